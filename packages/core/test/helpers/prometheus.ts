import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A scrape target: `host:port` and the labels Prometheus attaches to its series (e.g. `pool`). */
export interface ScrapeTarget {
  address: string;
  labels?: Record<string, string>;
}

/** What Prometheus scrapes: fixed targets, or the groups listed in a file_sd JSON file (created empty if not given). */
export type PrometheusScrape = ScrapeTarget[] | { fileSd?: string };

/** An active scrape target as Prometheus reports it. */
export interface ActiveTarget {
  address: string;
  pool: string;
  version: string;
  health: string;
}

/** A real Prometheus server started for a test. */
export interface RunningPrometheus {
  url: string;
  pid: number;
  /** The file_sd file Prometheus watches, when it scrapes one. */
  fileSd?: string;
  /** Active scrape targets with their pool and version labels, sorted by address. */
  targets(): Promise<ActiveTarget[]>;
  /** The last lines Prometheus wrote to stderr. */
  stderr(): string;
  /** Polls an instant query until it returns at least one series, or throws after `timeoutMs`. */
  waitFor(query: string, timeoutMs?: number): Promise<void>;
  /** SIGTERM this process (SIGKILL after 5 s), then removes its temp directory. */
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function requireBinary(): void {
  try {
    execFileSync('prometheus', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error(
      'prometheus is not installed: run `bash scripts/install-test-deps.sh` (Debian package prometheus)',
    );
  }
}

const header = [
  'global:',
  '  scrape_interval: 1s',
  '  scrape_timeout: 1s',
  '  evaluation_interval: 1s',
  'scrape_configs:',
  '  - job_name: codegraph',
];

const yaml = (targets: ScrapeTarget[]) =>
  [
    ...header,
    '    static_configs:',
    ...targets.flatMap((t) => [
      `      - targets: ['${t.address}']`,
      '        labels:',
      ...Object.entries(t.labels ?? { instance_kind: 'test' }).map(([k, v]) => `          ${k}: '${v}'`),
    ]),
    '',
  ].join('\n');

const fileSdYaml = (file: string) =>
  [...header, '    file_sd_configs:', `      - files: ['${file}']`, '        refresh_interval: 1s', ''].join(
    '\n',
  );

/**
 * Starts Debian's `prometheus` with a 1 s scrape interval on a free loopback port, scraping `targets`
 * (or the groups of a file_sd file: `{ fileSd }`),
 * and waits until it is ready. Records the PID it started and stops only that process.
 *
 * @example
 * ```ts
 * const prom = await startPrometheus([{ address: '127.0.0.1:8000', labels: { pool: 'canary' } }])
 * await prom.waitFor('up{pool="canary"} == 1')
 * afterAll(() => prom.stop())
 * ```
 */
export async function startPrometheus(scrape: PrometheusScrape = {}): Promise<RunningPrometheus> {
  requireBinary();
  const dir = mkdtempSync(path.join(tmpdir(), 'cg-prom-'));
  const config = path.join(dir, 'prometheus.yml');
  let fileSd: string | undefined;
  if (Array.isArray(scrape)) writeFileSync(config, yaml(scrape));
  else {
    fileSd = scrape.fileSd ?? path.join(dir, 'targets.json');
    if (!scrape.fileSd) writeFileSync(fileSd, '[]\n');
    writeFileSync(config, fileSdYaml(fileSd));
  }
  const port = await freePort();
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const poll = async (what: string, timeoutMs: number, ok: () => Promise<boolean>) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${stderr}`);
      if (await ok().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`prometheus: ${what} not within ${timeoutMs} ms; stderr: ${stderr}`);
  };
  try {
    await poll('ready', 20_000, async () => (await fetch(`${url}/-/ready`)).ok);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    pid: child.pid!,
    ...(fileSd ? { fileSd } : {}),
    stop,
    stderr: () => stderr,
    async targets() {
      const res = await fetch(`${url}/api/v1/targets?state=active`).catch(() => undefined);
      if (!res?.ok) return [];
      const body = (await res.json()) as {
        data: { activeTargets: { labels: Record<string, string>; health: string }[] };
      };
      return body.data.activeTargets
        .map((t) => ({
          address: t.labels.instance ?? '',
          pool: t.labels.pool ?? '',
          version: t.labels.version ?? '',
          health: t.health,
        }))
        .sort((a, b) => a.address.localeCompare(b.address));
    },
    waitFor: (query, timeoutMs = 20_000) =>
      poll(`a sample for ${query}`, timeoutMs, async () => {
        const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(query)}`);
        const body = (await res.json()) as { data?: { result?: unknown[] } };
        return (body.data?.result?.length ?? 0) > 0;
      }),
  };
}
