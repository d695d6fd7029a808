// Real parts for the canary bench: Prometheus with file_sd, the sample service, a steady open-loop load.
import { spawn } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

export const sampleServer = fileURLToPath(
  new URL('../../../examples/sample-service/server.mjs', import.meta.url),
);

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });

/** Polls `ok` every 200 ms until it holds; throws after `timeoutMs`. */
export async function poll(what, timeoutMs, ok) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

/** Debian's prometheus on a free loopback port, 1 s scrapes of the targets in `fileSd`. */
export async function startPrometheus(dir, fileSd) {
  const config = path.join(dir, 'prometheus.yml');
  await writeFile(
    config,
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: codegraph\n    file_sd_configs:\n      - files: ['${fileSd}']\n        refresh_interval: 1s\n`,
  );
  const port = await freePort();
  const child = spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--storage.tsdb.path=${path.join(dir, 'prom-data')}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  const exited = new Promise((resolve) => child.once('close', resolve));
  child.once('error', (err) => {
    process.stderr.write(`bench: prometheus could not start (${err.message}); install Debian's prometheus\n`);
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
  };
  try {
    await poll('prometheus ready', 20_000, async () => (await fetch(`${url}/-/ready`)).ok);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    stop,
    waitFor: (query) =>
      poll(`prometheus sample for ${query}`, 20_000, async () => {
        const body = await (await fetch(`${url}/api/v1/query?query=${encodeURIComponent(query)}`)).json();
        return (body.data?.result?.length ?? 0) > 0;
      }),
  };
}

/** file_sd targets from the target's pools, labelled with pool and version (what nginxTarget writes itself). */
export async function writeFileSd(file, target) {
  const { pools } = await target.describe();
  const groups = pools.map((p) => ({
    targets: p.endpoints.map((e) => new URL(e).host),
    labels: { pool: p.name, version: p.version },
  }));
  await writeFile(`${file}.tmp`, JSON.stringify(groups));
  await rename(`${file}.tmp`, file);
}

/**
 * A steady open-loop load through `front` at `rate` requests per second: requests are sent on a fixed
 * schedule whatever the answers take (undici, keep-alive, honouring `Connection: close`), recording when
 * each was sent, its status and the version that answered (`x-codegraph-version`); a request that
 * gets no answer counts as status 0 with its error code.
 */
export function steadyLoad(front, rate) {
  const records = [];
  const pool = new Pool(front, { connections: 64, pipelining: 1, keepAliveTimeout: 10_000 });
  const inflight = new Set();
  const send = () => {
    const t = Date.now();
    const p = pool
      .request({ method: 'GET', path: '/api/v1/search?q=graph', headersTimeout: 10_000, bodyTimeout: 10_000 })
      .then(async (res) => {
        await res.body.dump();
        records.push({
          t,
          status: res.statusCode,
          version: String(res.headers['x-codegraph-version'] ?? 'none'),
        });
      })
      .catch((err) => records.push({ t, status: 0, version: err?.code ?? 'error' }));
    inflight.add(p);
    p.finally(() => inflight.delete(p));
  };
  // Catch up on the schedule every tick, so timer jitter changes burstiness, not the rate.
  const started = performance.now();
  let sent = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    for (; sent < due; sent++) send();
  }, 5);
  let stopped;
  return {
    records,
    stop() {
      stopped ??= (async () => {
        clearInterval(timer);
        await Promise.allSettled([...inflight]);
        await pool.close();
      })();
      return stopped;
    },
  };
}

export async function tempDir() {
  const dir = await mkdtemp(path.join(tmpdir(), 'cg-canary-bench-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
