#!/usr/bin/env node
// Measures the local target with the sample service: provision and route times, throughput and latency
// straight to a replica and through the proxy, and failed requests while weights move under load.
// Needs the built core (`npx tsup` in packages/core). Run: node examples/sample-service/measure-local-target.mjs
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { localTarget } from '@codegraph/release-core';
import autocannon from 'autocannon';

const server = fileURLToPath(new URL('./server.mjs', import.meta.url));
const seconds = Number(process.env.SECONDS_PER_RUN ?? 5);
const stateDir = await mkdtemp(path.join(tmpdir(), 'cg-measure-'));
const target = localTarget({
  stateDir,
  command: ({ version, port }) => ({
    command: process.execPath,
    args: [server, '--port', String(port), '--version', version],
  }),
});
const timed = async (label, fn) => {
  const t0 = performance.now();
  const result = await fn();
  console.log(`${label}: ${Math.round(performance.now() - t0)} ms`);
  return result;
};
const load = (url, duration = seconds) =>
  autocannon({ url: `${url}/api/v1/search?q=graph`, connections: 10, duration });
const summary = (r) =>
  `${Math.round(r.requests.average)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, ` +
  `errors ${r.errors}, timeouts ${r.timeouts}, non-2xx ${r.non2xx}`;

try {
  const stable = await timed('provision v1 x2 (starts the proxy)', () =>
    target.provision({ pool: 'v1', version: 'v1', replicas: 2 }),
  );
  await timed('route v1=100', () => target.route({ v1: 100 }));
  const front = await target.endpoint();
  console.log(`direct to one replica: ${summary(await load(stable.endpoints[0]))}`);
  console.log(`through the proxy:     ${summary(await load(front))}`);

  await timed('provision v2 x2', () => target.provision({ pool: 'v2', version: 'v2', replicas: 2 }));
  const during = load(front, seconds + 2);
  for (const weights of [{ v1: 90, v2: 10 }, { v1: 50, v2: 50 }, { v2: 100 }]) {
    await new Promise((r) => setTimeout(r, (seconds * 1000) / 4));
    await timed(`route ${JSON.stringify(weights)} under load`, () => target.route(weights));
  }
  await timed('retire v1 under load', () => target.retire('v1'));
  console.log(`while weights moved:   ${summary(await during)}`);
} finally {
  await timed('destroy', () => target.destroy());
  await rm(stateDir, { recursive: true, force: true });
}
