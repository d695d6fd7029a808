import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { codegraphSlo, type PrometheusMetric, type Target } from '@codegraph/release-core';

/** A real Prometheus (Debian's `prometheus`) scraping every 1 s the targets listed in a file_sd file. */
export interface RunningPrometheus {
  url: string;
  /** The file_sd JSON file Prometheus watches. */
  fileSd: string;
  /** Resolves once an instant query returns at least one series; throws after `timeoutMs`. */
  waitFor(query: string, timeoutMs?: number): Promise<void>;
  /** Stops the process this helper started (SIGTERM, SIGKILL after 5 s) and removes its directory. */
  stop(): Promise<void>;
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });

async function poll(
  what: string,
  timeoutMs: number,
  ok: () => Promise<boolean>,
  dead: () => string | undefined,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const died = dead();
    if (died) throw new Error(died);
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`prometheus: ${what} not within ${timeoutMs} ms`);
}

/**
 * Starts `prometheus` on a free loopback port with a 1 s scrape interval and one file_sd job
 * (`fileSd`, created empty when not given), and waits until it is ready.
 */
export async function startPrometheus(fileSd?: string): Promise<RunningPrometheus> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cg-canary-prom-'));
  const sd = fileSd ?? path.join(dir, 'targets.json');
  if (!fileSd) await writeFile(sd, '[]\n');
  const config = path.join(dir, 'prometheus.yml');
  await writeFile(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: codegraph',
      '    file_sd_configs:',
      `      - files: ['${sd}']`,
      '        refresh_interval: 1s',
      '',
    ].join('\n'),
  );
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
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const dead = () =>
    spawnError
      ? `prometheus could not start (${spawnError.message}); install Debian's prometheus package`
      : child.exitCode !== null
        ? `prometheus exited with ${child.exitCode}: ${stderr}`
        : undefined;
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await poll('ready', 20_000, async () => (await fetch(`${url}/-/ready`)).ok, dead);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    fileSd: sd,
    stop,
    waitFor: (query, timeoutMs = 20_000) =>
      poll(
        `a sample for ${query}`,
        timeoutMs,
        async () => {
          const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(query)}`);
          const body = (await res.json()) as { data?: { result?: unknown[] } };
          return (body.data?.result?.length ?? 0) > 0;
        },
        dead,
      ),
  };
}

/** Writes the target's replicas as file_sd targets labelled with their pool and version (atomically). */
export async function writeFileSd(file: string, target: Target): Promise<void> {
  const { pools } = await target.describe();
  const groups = pools.map((p) => ({
    targets: p.endpoints.map((e) => new URL(e).host),
    labels: { pool: p.name, version: p.version },
  }));
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(groups)}\n`);
  await rename(tmp, file);
}

const meanLatency = (sel: string, window: string) =>
  `sum(rate(http_request_duration_seconds_sum{${sel}}[${window}])) / sum(rate(http_request_duration_seconds_count{${sel}}[${window}]))`;

/**
 * What the Prometheus scenarios judge per pool: the pool's mean latency over the other pools' (a shared
 * test machine moves absolute latency with its load; a 5x slower canary is 4x or more) and the seed's 5xx
 * share, from the sample service's own metrics scraped by Prometheus.
 */
export const relativeSlo = (): PrometheusMetric[] => [
  {
    name: 'latency_mean_ratio',
    query: `(${meanLatency('pool="{{pool}}"', '10s')}) / (${meanLatency('pool!="{{pool}}"', '10s')})`,
    threshold: { max: 2.5 },
  },
  ...codegraphSlo({ window: '5s', maxErrorRate: 0.02 }).filter((m) => m.name === 'error_rate'),
];
