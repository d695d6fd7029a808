import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalTargetOptions } from '@codegraph/release-core';
import { type NginxTarget, type NginxTargetOptions, nginxTarget } from '@codegraph/target-nginx';
import { startPrometheus as startCorePrometheus } from '../../core/test/helpers/prometheus.js';
import { alive, loadGenerator as coreLoadGenerator, until } from '../../core/test/helpers/sample.js';

export { alive, until };

export const nginxBinary = '/usr/sbin/nginx';

/** Fails (never skips) when nginx is missing, saying how to install it. */
export function requireNginx(): void {
  if (!existsSync(nginxBinary)) {
    throw new Error(
      `nginx is not installed at ${nginxBinary}; these tests run a real nginx: run bash scripts/install-test-deps.sh`,
    );
  }
}

export const sampleServerPath = fileURLToPath(
  new URL('../../../examples/sample-service/server.mjs', import.meta.url),
);

/** Runs the sample service; `perVersion` adds environment (faults) for one version only. */
export const sampleCommand =
  (perVersion: Record<string, Record<string, string>> = {}): LocalTargetOptions['command'] =>
  ({ version, port }) => ({
    command: process.execPath,
    args: [sampleServerPath, '--port', String(port), '--version', version],
    env: { ...perVersion[version] },
  });

/** PIDs of processes whose command line mentions `needle` (e.g. a state directory). */
export async function pidsMentioning(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmd.replace(/\0/g, ' ').includes(needle) && alive(Number(entry))) pids.push(Number(entry));
  }
  return pids;
}

/** The master PID nginx wrote for a target's state directory. */
export const masterPid = async (stateDir: string): Promise<number> =>
  Number((await readFile(path.join(stateDir, 'nginx', 'nginx.pid'), 'utf8')).trim());

/** Creates nginx targets on temp state directories; cleans up every process and directory. */
export class NginxHarness {
  private readonly dirs: string[] = [];
  private readonly targets: NginxTarget[] = [];

  async dir(prefix = 'cg-nginx-'): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  async target(options: Partial<NginxTargetOptions> = {}): Promise<NginxTarget> {
    const target = nginxTarget({
      stateDir: options.stateDir ?? (await this.dir()),
      ...(options.backend ? {} : { command: sampleCommand() }),
      readyTimeoutMs: 10_000,
      stopTimeoutMs: 3_000,
      drainTimeoutMs: 5_000,
      ...options,
    });
    this.targets.push(target);
    return target;
  }

  /**
   * Destroys every target, then kills whatever process still mentions a state directory (nginx master and
   * workers, replicas). Returns those survivors, which a test reports as a leak.
   */
  async cleanup(): Promise<number[]> {
    for (const target of this.targets.splice(0)) await target.destroy().catch(() => {});
    const survivors: number[] = [];
    for (const dir of this.dirs) survivors.push(...(await pidsMentioning(dir)));
    for (const pid of survivors) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
    await Promise.all(this.dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
    return survivors;
  }
}

/** Sends `n` GETs one after another and counts them by `x-codegraph-pool`. */
export async function countByPool(
  url: string,
  n: number,
  pathname = '/health',
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}${pathname}`);
    await res.arrayBuffer();
    const pool = res.headers.get('x-codegraph-pool') || `HTTP ${res.status}`;
    counts[pool] = (counts[pool] ?? 0) + 1;
  }
  return counts;
}

/** Searches through `url` from `concurrency` loops until stopped; counts answers by pool and every failure. */
export const loadGenerator = (url: string, concurrency = 4) =>
  coreLoadGenerator(`${url}/api/v1/search?q=graph`, concurrency);

/** A real Prometheus that scrapes the targets listed in a `file_sd` file every second. */
export const startPrometheus = (fileSd: string) => startCorePrometheus({ fileSd });

/** The access log's lines; `upstreams` lists every replica nginx tried, `connectionRequests` counts requests on the client connection. */
export async function accessLog(stateDir: string) {
  const text = await readFile(path.join(stateDir, 'nginx', 'access.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const f = line.split('\t');
      return {
        pool: f[1] ?? '',
        upstreams: (f[2] ?? '').split(', '),
        status: Number(f[3]),
        connectionRequests: Number(f[9]),
      };
    });
}
