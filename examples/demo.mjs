// The main job on the embedded default: sample-service v1 on localTarget, a rolling release of v2,
// then v3, which carries a fault (half its API requests fail) and is rolled back automatically.
//   npm install && npm run demo
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createReleaseEngine,
  fileStore,
  httpValidation,
  localTarget,
  rolling,
} from '@codegraph/release-core';

const sample = fileURLToPath(new URL('./sample-service/server.mjs', import.meta.url));
const faults = { v3: { FAULT_ERROR_RATE: '0.5' } };
const dir = await mkdtemp(join(tmpdir(), 'codegraph-demo-'));

const target = localTarget({
  stateDir: join(dir, 'local'),
  command: ({ version, port }) => ({
    command: process.execPath,
    args: [sample, '--port', String(port), '--version', version],
    env: faults[version] ?? {},
  }),
});

const engine = createReleaseEngine({
  environment: 'demo',
  target,
  strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
  verifiers: [
    httpValidation({
      loadPath: '/api/v1/search?q=graph',
      concurrentRequests: 10,
      loadRequests: 100,
      maxResponseTimeMs: 200,
    }),
  ],
  store: fileStore({ dir: join(dir, 'store') }),
  replicas: 3,
  metrics: false,
});

const t0 = Date.now();
const stamp = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
const say = (line) => process.stdout.write(`${stamp()}  ${line}\n`);

engine.on('run.started', (e) => say(`== ${e.kind} ${e.version}${e.from ? ` (from ${e.from})` : ''}`));
engine.on('phase.started', (e) => say(`   phase ${e.phase}`));
engine.on('phase.finished', (e) => {
  if (!e.ok) say(`   phase ${e.phase} FAILED: ${e.error?.message ?? ''}`);
});
engine.on('action.finished', (e) => {
  const a = e.action;
  if (a.type === 'provision') say(`     ${a.pool}: ${a.replicas} replica(s) of ${a.version} ready`);
  if (a.type === 'route')
    say(
      `     traffic ${Object.entries(a.weights)
        .map(([p, w]) => `${p} ${w}%`)
        .join(' | ')}`,
    );
  if (a.type === 'retire') say(`     ${a.pool} retired`);
});
engine.on('analysis.finished', (e) => {
  const failed = e.result.measurements.flatMap((m) => m.checks).filter((c) => c.verdict !== 'pass');
  say(
    `     analysis ${e.result.name}: ${e.result.verdict.toUpperCase()}${failed.length ? ` (${failed.map((c) => `${c.name}=${c.observed}`).join(', ')})` : ''}`,
  );
});
engine.on('run.finished', (e) =>
  say(`== ${e.status.toUpperCase()}: serving ${e.serving ?? 'nothing'}${e.reason ? ` (${e.reason})` : ''}`),
);

const results = [];
try {
  for (const version of ['v1', 'v2', 'v3']) results.push(await engine.release({ version }));
  const status = await engine.status();
  process.stdout.write('\nSummary\n');
  for (const r of results) {
    process.stdout.write(
      `  ${r.version.padEnd(4)} ${r.status.padEnd(12)} serving ${r.serving ?? '-'}  ${(r.durationMs / 1000).toFixed(1)}s\n`,
    );
  }
  process.stdout.write(
    `  now serving ${status.serving} on ${status.pools.map((p) => `${p.name} x${p.replicas}`).join(', ')}\n`,
  );
  const expected = ['succeeded', 'succeeded', 'rolled-back'];
  if (results.map((r) => r.status).join() !== expected.join() || status.serving !== 'v2') {
    process.stdout.write('demo: unexpected outcome\n');
    process.exitCode = 1;
  }
} finally {
  await engine.close();
  await target.destroy();
  await rm(dir, { recursive: true, force: true });
}
