// Blue-green switch bench: N switches and N switches back under continuous HTTP load, through a real
// nginx (default) or the embedded localTarget, using the BUILT packages.
//
//   npm run bench                         # nginx, 3 cycles
//   node bench/switch.mjs --target local --cycles 5 --concurrency 16
//
// Each cycle releases a new version with autoPromotion off; the decision to switch is the moment
// engine.promote(runId) is called, the decision to switch back the moment engine.abort(runId) is called
// during the scale-down delay. A switch is done when every request sent after it is answered by the new
// colour: switch_s = (start of the last request still answered by the old colour) - decision.
// The last line of output is one JSON object.

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createReleaseEngine, fileStore, httpValidation, localTarget } from '@codegraph/release-core';
import { Agent, request } from 'undici';

const here = new URL('.', import.meta.url);
const dist = new URL('../dist/index.js', here);
if (!existsSync(dist)) {
  console.error('bench: build first (npm run build in packages/strategy-bluegreen)');
  process.exit(2);
}
const { blueGreen } = await import(dist.href);

const { values: args } = parseArgs({
  options: {
    target: { type: 'string', default: 'nginx' },
    cycles: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '8' },
  },
});
const cycles = Number(args.cycles);
const concurrency = Number(args.concurrency);
if (!['nginx', 'local'].includes(args.target) || !(cycles >= 1) || !(concurrency >= 1)) {
  console.error('usage: switch.mjs [--target nginx|local] [--cycles N>=1] [--concurrency N>=1]');
  process.exit(2);
}
const goals = { switch_s: 1, switchback_s: 1, failed_requests: 0, rps: 300 };
const sample = new URL('../../../examples/sample-service/server.mjs', here).pathname;
const command = ({ version, port }) => ({
  command: process.execPath,
  args: [sample, '--port', String(port), '--version', version],
});

const dir = await mkdtemp(join(tmpdir(), 'cg-bluegreen-bench-'));
let target;
if (args.target === 'nginx') {
  const { nginxTarget } = await import('@codegraph/target-nginx').catch(() => {
    console.error('bench: build @codegraph/target-nginx first (npm run build -w @codegraph/target-nginx)');
    process.exit(2);
  });
  target = nginxTarget({
    stateDir: join(dir, 'nginx'),
    command,
    drainTimeoutMs: 5_000,
    stopTimeoutMs: 3_000,
  });
} else {
  target = localTarget({ stateDir: join(dir, 'local'), command, stopTimeoutMs: 3_000 });
}

const verifiers = [
  httpValidation({ timeoutSecs: 5, loadRequests: 40, concurrentRequests: 4, latencySamples: 5 }),
];
const engine = createReleaseEngine({
  environment: 'bench',
  target,
  strategy: blueGreen({ autoPromotion: false, scaleDownDelayMs: 600_000, abortScaleDownDelayMs: 0 }),
  store: fileStore({ dir: join(dir, 'store') }),
  verifiers,
  replicas: 2,
  metrics: false,
});
const first = createReleaseEngine({
  environment: 'bench',
  target,
  strategy: blueGreen({ scaleDownDelayMs: 0 }),
  store: fileStore({ dir: join(dir, 'store') }),
  verifiers,
  replicas: 2,
  metrics: false,
});

/** Load: `concurrency` loops of GET /api/v1/search, each answer recorded with its start time and colour. */
function startLoad(url) {
  const answers = [];
  const agent = new Agent({ connections: concurrency });
  let running = true;
  const loops = Array.from({ length: concurrency }, async (_, i) => {
    let n = 0;
    while (running) {
      const start = performance.now();
      try {
        const res = await request(`${url}/api/v1/search?q=b${i}-${n++}`, { dispatcher: agent });
        await res.body.dump();
        answers.push({ start, pool: res.headers['x-codegraph-pool'], ok: res.statusCode === 200 });
      } catch {
        answers.push({ start, pool: undefined, ok: false });
      }
    }
  });
  return {
    answers,
    async stop() {
      if (!running) return;
      running = false;
      await Promise.all(loops);
      await agent.close();
    },
  };
}

/** Resolves with the run id once the engine starts a pause of the given kind. */
const pauseStarted = (timed) =>
  new Promise((resolve) => {
    const off = engine.on('action.started', (e) => {
      if (e.action.type === 'pause' && (e.action.durationMs !== undefined) === timed) {
        off();
        resolve(e.runId);
      }
    });
  });

/** Seconds from `decision` to the start of the last request answered by `oldPool`; waits for proof it ended. */
async function settle(load, decision, oldPool, newPool) {
  const deadline = performance.now() + 30_000;
  // Proof: 200 answers in a row, all sent after the decision, all from the new colour.
  for (;;) {
    const after = load.answers.filter((a) => a.start > decision);
    const lastOld = after.findLastIndex((a) => a.pool === oldPool);
    if (after.length - lastOld - 1 >= 200 && after.slice(lastOld + 1).every((a) => a.pool === newPool)) {
      return lastOld < 0 ? 0 : (after[lastOld].start - decision) / 1000;
    }
    if (performance.now() > deadline) throw new Error(`traffic never settled on ${newPool}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const round = (x) => Math.round(x * 1000) / 1000;
// When each route action started and finished, to split a switch into engine time and target time.
const routes = [];
engine.on('action.started', (e) => {
  if (e.action.type === 'route') routes.push({ started: performance.now(), finished: Number.NaN });
});
engine.on('action.finished', (e) => {
  if (e.action.type === 'route') routes[routes.length - 1].finished = performance.now();
});
const split = (decision) => {
  const r = routes.findLast((x) => x.started >= decision);
  return r
    ? `engine ${round((r.started - decision) / 1000)} s + route ${round((r.finished - r.started) / 1000)} s`
    : '';
};
const switches = [];
const switchbacks = [];
let load;
let exitCode = 0;
try {
  const r1 = await first.release({ version: 'v1' });
  if (r1.status !== 'succeeded') throw new Error(`first release failed: ${r1.reason}`);
  load = startLoad(await target.endpoint());
  const t0 = performance.now();
  for (let i = 0; i < cycles; i++) {
    const version = `v2.${i}`;
    const approval = pauseStarted(false);
    const delay = pauseStarted(true);
    const release = engine.release({ version });
    const runId = await approval;
    const decided = performance.now();
    engine.promote(runId);
    await delay;
    switches.push(await settle(load, decided, 'blue', 'green'));
    const switchSplit = split(decided);
    const abortedAt = performance.now();
    engine.abort(runId, 'bench: switch back');
    const result = await release;
    if (result.status !== 'rolled-back')
      throw new Error(`cycle ${i}: expected rolled-back, got ${result.status}`);
    switchbacks.push(await settle(load, abortedAt, 'green', 'blue'));
    console.log(
      `cycle ${i + 1}/${cycles}: switch ${round(switches[i])} s (${switchSplit}), switch back ${round(switchbacks[i])} s (${split(abortedAt)})`,
    );
  }
  const elapsed = (performance.now() - t0) / 1000;
  await load.stop();
  const measured = load.answers.filter((a) => a.start >= t0);
  const figures = {
    target: args.target,
    cycles,
    concurrency,
    switch_s: round(Math.max(...switches)),
    switchback_s: round(Math.max(...switchbacks)),
    failed_requests: measured.filter((a) => !a.ok).length,
    requests: measured.length,
    rps: Math.round(measured.length / elapsed),
    goals: {
      switch_s: `<= ${goals.switch_s}`,
      switchback_s: `<= ${goals.switchback_s}`,
      failed_requests: 0,
      rps: `>= ${goals.rps}`,
    },
  };
  const line = (k, ok) =>
    console.log(
      `${k.padEnd(16)} ${String(figures[k]).padStart(8)}   goal ${figures.goals[k]}   ${ok ? 'met' : 'MISSED'}`,
    );
  line('switch_s', figures.switch_s <= goals.switch_s);
  line('switchback_s', figures.switchback_s <= goals.switchback_s);
  line('failed_requests', figures.failed_requests === 0);
  line('rps', figures.rps >= goals.rps);
  console.log(JSON.stringify(figures));
} catch (err) {
  console.error(`bench failed: ${err instanceof Error ? err.stack : err}`);
  exitCode = 1;
} finally {
  await load?.stop().catch(() => undefined);
  await target.destroy().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}
process.exit(exitCode);
