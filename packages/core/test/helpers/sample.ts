import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type LocalTarget, type LocalTargetOptions, localTarget } from '../../src/index.js';

/** Absolute path of the sample CodeGraph-like service (`examples/sample-service/server.mjs`). */
export const sampleServerPath = fileURLToPath(
  new URL('../../../../examples/sample-service/server.mjs', import.meta.url),
);

/** Options of {@link startSample}. */
export interface StartSampleOptions {
  /** Reported by `/health`, `codegraph_build_info` and the `x-codegraph-version` header. @default 'v1' */
  version?: string;
  /** Extra environment variables (`API_KEY`, `FAULT_*`, `DATA_DIR`...). */
  env?: Record<string, string>;
  /** Extra command-line flags, e.g. `['--latency-ms', '20']`. */
  args?: string[];
  /** How long to wait for the `listening` line. @default 15000 */
  timeoutMs?: number;
}

/** A running sample service. */
export interface RunningSample {
  /** Base URL, e.g. `http://127.0.0.1:41234` (`https://` when started with `--tls-cert`). */
  url: string;
  port: number;
  pid: number;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code once the process is gone. */
  stop(graceMs?: number): Promise<number | null>;
}

const running = new Set<ChildProcess>();

/**
 * Spawns the sample service on a free loopback port and resolves once it prints its `listening` line.
 * Rejects (and leaves no process) when it exits or stays silent past `timeoutMs`.
 *
 * @example
 * ```ts
 * const svc = await startSample({ version: 'v2', env: { API_KEY: 'k' } });
 * afterEach(() => svc.stop());
 * ```
 */
export async function startSample(options: StartSampleOptions = {}): Promise<RunningSample> {
  const version = options.version ?? 'v1';
  const child = spawn(
    process.execPath,
    [sampleServerPath, '--port', '0', '--version', version, ...(options.args ?? [])],
    {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
  exited.then(() => running.delete(child));

  const tls = (options.args ?? []).includes('--tls-cert');
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => fail(new Error(`sample service silent for ${options.timeoutMs ?? 15_000} ms`)),
      options.timeoutMs ?? 15_000,
    );
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"listening"'));
      if (!line) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) =>
      fail(new Error(`sample service exited with ${code} before listening: ${stderr.trim()}`)),
    );
  });

  const stop = async (graceMs = 5_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    stderr: () => stderr,
    stop,
  };
}

/** Kills every sample service this test file started and that is still running; for `afterAll`. */
export async function stopAllSamples(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

// Local targets running the sample service --------------------------------------------------------
/** A process is alive when signal 0 reaches it and it is not a zombie waiting to be reaped. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/**
 * Every live process that holds a file under `dir` open or names it on its command line: replicas
 * write their logs there and the proxy is started with `--state-dir`. Finds what a record forgot.
 */
export async function processesUsing(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      let uses = cmdline.split('\0').some((arg) => arg.startsWith(dir));
      if (!uses) {
        for (const fd of await readdir(`/proc/${pid}/fd`)) {
          if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')).startsWith(`${dir}/`)) uses = true;
        }
      }
      if (uses && alive(pid)) found.push(pid);
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/** Every PID a local target recorded in its state directory (replicas and proxy). */
export async function recordedPids(stateDir: string): Promise<number[]> {
  const json = async (f: string) => {
    try {
      return JSON.parse(await readFile(path.join(stateDir, f), 'utf8'));
    } catch {
      return null; // missing or damaged (a test may damage it on purpose)
    }
  };
  const pools = ((await json('pools.json'))?.pools ?? {}) as Record<string, { members: { pid: number }[] }>;
  const proxy = (await json('proxy.json')) as { pid: number } | null;
  return [...Object.values(pools).flatMap((p) => p.members.map((m) => m.pid)), ...(proxy ? [proxy.pid] : [])];
}

/** Polls `check` until it holds, failing after `timeoutMs`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Extra settings of the sample replicas a {@link LocalHarness} starts. */
export interface SampleReplicas {
  env?: Record<string, string>;
  args?: string[];
}

/** Creates local targets on temp state directories, and cleans every process and directory up. */
export class LocalHarness {
  private readonly dirs: string[] = [];
  private readonly targets: LocalTarget[] = [];
  /** PIDs a test saw by other means (error details, child engines); killed in cleanup if still alive. */
  readonly pids = new Set<number>();

  async dir(prefix = 'cg-local-'): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  /** A command running the sample service; `perVersion` sets faults for one version only. */
  static command(
    replicas: SampleReplicas = {},
    perVersion: Record<string, SampleReplicas> = {},
  ): LocalTargetOptions['command'] {
    return ({ version, port }) => ({
      command: process.execPath,
      args: [
        sampleServerPath,
        '--port',
        String(port),
        '--version',
        version,
        ...(replicas.args ?? []),
        ...(perVersion[version]?.args ?? []),
      ],
      env: { ...replicas.env, ...perVersion[version]?.env },
    });
  }

  async target(options: Partial<LocalTargetOptions> = {}): Promise<LocalTarget> {
    const target = localTarget({
      stateDir: options.stateDir ?? (await this.dir()),
      command: LocalHarness.command(),
      readyTimeoutMs: 10_000,
      stopTimeoutMs: 3_000,
      ...options,
    });
    this.targets.push(target);
    return target;
  }

  /** Destroys every target, then kills whatever recorded PID survived (which the test reports). */
  async cleanup(): Promise<number[]> {
    for (const dir of this.dirs) for (const pid of await recordedPids(dir)) this.pids.add(pid);
    for (const target of this.targets.splice(0)) await target.destroy().catch(() => {});
    for (const dir of this.dirs) for (const pid of await processesUsing(dir)) this.pids.add(pid);
    const survivors = [...this.pids].filter(alive);
    for (const pid of survivors) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
    this.pids.clear();
    await Promise.all(this.dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
    return survivors;
  }
}

/** Sends GETs from `concurrency` loops until stopped; counts answers by status and failures. */
export function loadGenerator(url: string, concurrency = 4) {
  const stats = { ok: 0, failed: 0, failures: [] as string[], byPool: {} as Record<string, number> };
  let running = true;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const res = await fetch(url);
        await res.arrayBuffer();
        const pool = res.headers.get('x-codegraph-pool') ?? 'none';
        stats.byPool[pool] = (stats.byPool[pool] ?? 0) + 1;
        if (res.status === 200) stats.ok++;
        else {
          stats.failed++;
          stats.failures.push(`HTTP ${res.status} from ${pool}`);
        }
      } catch (err) {
        stats.failed++;
        stats.failures.push(String((err as Error).cause ?? err));
      }
    }
  });
  return {
    stats,
    /** Waits until `n` more requests succeeded than when called. */
    async more(n: number, timeoutMs = 15_000) {
      const target = stats.ok + n;
      await until(() => stats.ok >= target || stats.failed > 0, timeoutMs, `${n} more answered requests`);
    },
    async stop() {
      running = false;
      await Promise.all(loops);
      return stats;
    },
  };
}

/** Sends `n` GETs one after the other and counts answers by a response header, or by `/health`'s pid. */
export async function countBy(
  url: string,
  n: number,
  header = 'x-codegraph-pool',
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await fetch(url);
    const body = (await res.json()) as { pid?: number };
    const key = header === 'pid' ? String(body.pid) : (res.headers.get(header) ?? 'none');
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** The base URL of the control API of the local target proxy recorded in `stateDir`. */
export async function controlUrl(stateDir: string): Promise<string> {
  const proxy = JSON.parse(await readFile(path.join(stateDir, 'proxy.json'), 'utf8')) as {
    host: string;
    controlPort: number;
  };
  return `http://${proxy.host}:${proxy.controlPort}`;
}
