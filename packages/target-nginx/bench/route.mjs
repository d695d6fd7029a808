// Measures nginxTarget against a real nginx and real sample-service replicas, for client keep-alive off
// (the default) and on:
//  1. route(): render + nginx -t + reload + confirmation, over 20 weight changes;
//  2. failed requests from 16 fetch() loops while the weights change every 250 ms for 10 s;
//  3. steady throughput and latency of the same fetch() loops for 5 s; with keep-alive on, autocannon
//     (16 connections, 5 s) through nginx and against one replica reached directly.
// Run: npm run bench -w @codegraph/target-nginx   (builds first; needs /usr/sbin/nginx)
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nginxTarget } from '@codegraph/target-nginx';
import autocannon from 'autocannon';

const server = fileURLToPath(new URL('../../../examples/sample-service/server.mjs', import.meta.url));
const pct = (xs, p) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

const cannon = (url, seconds) =>
  autocannon({ url, connections: 16, duration: seconds }).then((r) => ({
    rps: Math.round(r.requests.average),
    p50ms: r.latency.p50,
    p99ms: r.latency.p99,
    non2xx: r.non2xx,
    connectionErrors: r.errors,
  }));

/** 16 fetch() loops; each failed request (network error or non-200) is counted, never retried. */
function fetchLoad(url) {
  const stats = { ok: 0, failed: 0, kinds: {} };
  const latencies = [];
  const started = performance.now();
  let running = true;
  const loops = Array.from({ length: 16 }, async () => {
    while (running) {
      const t0 = performance.now();
      try {
        const res = await fetch(url);
        await res.arrayBuffer();
        latencies.push(performance.now() - t0);
        if (res.status === 200) stats.ok++;
        else {
          stats.failed++;
          stats.kinds[`HTTP ${res.status}`] = (stats.kinds[`HTTP ${res.status}`] ?? 0) + 1;
        }
      } catch (err) {
        stats.failed++;
        const kind = String(err.cause?.code ?? err.cause?.message ?? err.message);
        stats.kinds[kind] = (stats.kinds[kind] ?? 0) + 1;
      }
    }
  });
  return async () => {
    running = false;
    await Promise.all(loops);
    const seconds = (performance.now() - started) / 1000;
    return {
      ...stats,
      rps: Math.round(stats.ok / seconds),
      p50ms: Math.round(pct(latencies, 50) * 10) / 10,
      p99ms: Math.round(pct(latencies, 99) * 10) / 10,
    };
  };
}

async function measure(clientKeepaliveS) {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'cg-nginx-bench-'));
  const target = nginxTarget({
    stateDir,
    nginx: { clientKeepaliveS },
    command: ({ version, port }) => ({
      command: process.execPath,
      args: [server, '--port', String(port), '--version', version],
    }),
  });
  try {
    await target.provision({ pool: 'stable', version: 'v1', replicas: 2 });
    await target.provision({ pool: 'canary', version: 'v2', replicas: 2 });
    await target.route({ stable: 100 });
    const url = await target.endpoint();
    const search = `${url}/api/v1/search?q=graph`;

    const routeMs = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      await target.route(i % 2 === 0 ? { stable: 90, canary: 10 } : { stable: 50, canary: 50 });
      routeMs.push(performance.now() - started);
    }

    const stop = fetchLoad(search);
    let changes = 0;
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      await target.route(changes % 2 === 0 ? { stable: 80, canary: 20 } : { stable: 20, canary: 80 });
      changes++;
      await new Promise((r) => setTimeout(r, 250));
    }
    const underChanges = await stop();

    return {
      clientKeepaliveS,
      routeMs: {
        median: Math.round(pct(routeMs, 50)),
        p95: Math.round(pct(routeMs, 95)),
        max: Math.round(Math.max(...routeMs)),
      },
      fetchUnderRouteChanges: { routeChanges: changes, ...underChanges },
      fetchSteady: await (async () => {
        const stop = fetchLoad(search);
        await new Promise((r) => setTimeout(r, 5_000));
        return stop();
      })(),
      // autocannon's latency figures are not meaningful when every response closes its connection.
      ...(clientKeepaliveS > 0 ? { autocannonSteady: await cannon(search, 5) } : {}),
    };
  } finally {
    await target.destroy();
    await rm(stateDir, { recursive: true, force: true });
  }
}

// One replica reached directly first, before the keep-alive-off run fills the TIME_WAIT table.
const direct = await (async () => {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'cg-nginx-bench-'));
  const target = nginxTarget({
    stateDir,
    command: ({ version, port }) => ({
      command: process.execPath,
      args: [server, '--port', String(port), '--version', version],
    }),
  });
  try {
    const pool = await target.provision({ pool: 'stable', version: 'v1', replicas: 1 });
    return await cannon(`${pool.endpoints[0]}/api/v1/search?q=graph`, 5);
  } finally {
    await target.destroy();
    await rm(stateDir, { recursive: true, force: true });
  }
})();
const results = [await measure(0), await measure(75)];
console.log(
  JSON.stringify(
    { loadAverage: loadavg().map((l) => l.toFixed(1)), results, oneReplicaDirect: direct },
    null,
    2,
  ),
);
