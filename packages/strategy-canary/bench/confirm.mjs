// Real confirmation of the simulated figures: A/A and faulty canaries through a real nginx (the judge
// reads nginx's access log through the target's `traffic(pool)`) and a real Prometheus (1 s scrapes;
// the `codegraphSlo` error-rate preset runs beside the judge as a dry run, to count its false alarms).
// Each canary is a fresh canary pool and a fresh baseline pool of the stable build, 50/50 behind nginx
// at 200 requests/s (100 per pool, as in the simulation); the strategy's gates run through runGate
// exactly as the engine runs them, one measurement a second.
//
//   node bench/confirm.mjs --runs 10 --looks 20
import path from 'node:path';
import { parseArgs } from 'node:util';
import { codegraphSlo, prometheusAnalysis, runGate } from '@codegraph/release-core';
import { canary, canaryJudge } from '../dist/index.js';
import { sampleServer, startPrometheus, steadyLoad, tempDir, writeFileSd } from './lib.mjs';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    // One-second looks per step for A/A canaries (faulty ones stop at their first failure).
    looks: { type: 'string', default: '20' },
  },
});
const RUNS = Number(args.runs);
const LOOKS = Number(args.looks);
const log = (m) => process.stderr.write(`confirm: ${m}\n`);

const background = { FAULT_LATENCY_MS: '5', FAULT_ERROR_RATE: '0.001' };
const faults = {
  AA: {},
  F1: { FAULT_ERROR_RATE: '0.051' },
  F2: { FAULT_SLOW_SHARE: '0.02', FAULT_SLOW_MS: '200' },
  F3: { FAULT_CRASH_ON_START: 'true' },
  F4: { FAULT_ERROR_RATE: '0.011' },
};
const envOf = new Map();
const command = ({ version, port }) => ({
  command: process.execPath,
  args: [sampleServer, '--port', String(port), '--version', version],
  env: { ...background, ...envOf.get(version) },
});
const strategy = canary({
  weights: [5, 20, 40],
  baseline: true,
  analysis: { verifiers: ['judge'], gate: { count: LOOKS, intervalMs: 1000, inconclusiveLimit: 3 } },
});

const { dir, remove } = await tempDir();
const fileSd = path.join(dir, 'targets.json');
await writeFileSd(fileSd, { describe: async () => ({ pools: [] }) });
let target;
let prom;
let load;
try {
  prom = await startPrometheus(dir, fileSd);
  const { nginxTarget } = await import('@codegraph/target-nginx');
  target = nginxTarget({ stateDir: path.join(dir, 'nginx'), command, prometheusFileSd: fileSd });
  envOf.set('v1', {});
  await target.provision({ pool: 'stable', version: 'v1', replicas: 1 });
  await target.route({ stable: 100 });
  load = steadyLoad(await target.endpoint(), 200);
  const promGate = prometheusAnalysis({
    name: 'prometheus',
    url: prom.url,
    metrics: codegraphSlo({ window: '10s', maxErrorRate: 0.02 }).filter((m) => m.name === 'error_rate'),
  });
  const out = { kind: 'real', target: 'nginx', runs: RUNS, looks_per_step: LOOKS, rate_rps_per_pool: 100 };
  let n = 0;
  for (const scenario of Object.keys(faults)) {
    const times = [];
    let promFalse = 0;
    for (let i = 0; i < RUNS; i++) {
      const version = `v${100 + n++}`;
      envOf.set(version, faults[scenario]);
      const started = Date.now();
      let failedAt = null;
      let decided = '';
      try {
        await Promise.all([
          target.provision({ pool: 'canary', version, replicas: 1 }),
          target.provision({ pool: 'baseline', version: 'v1', replicas: 1 }),
        ]);
      } catch (err) {
        // A canary that cannot start (F3) is caught by the target's readiness check.
        failedAt = (Date.now() - started) / 1000;
        decided = `readiness: ${String(err?.code ?? err?.message)}`;
      }
      if (failedAt === null) {
        await target.route({ stable: 0, canary: 50, baseline: 50 });
        const routed = Date.now();
        const { pools } = await target.describe();
        const ctx = {
          environment: 'confirm',
          version,
          pools: ['canary', 'baseline'].map((p) => pools.find((x) => x.name === p)),
          endpoint: await target.endpoint(),
          target,
        };
        const judge = canaryJudge();
        for (const step of strategy.steps.filter((s) => 'analysis' in s)) {
          const verifiers = [judge, ...(scenario === 'AA' ? [promGate] : [])];
          const r = await runGate('confirm', verifiers, ctx, {
            ...step.analysis.gate,
            ...(scenario === 'AA' ? { dryRun: ['prometheus'] } : {}),
          });
          if (r.verifiers?.prometheus?.verdict === 'fail') promFalse++;
          if (r.verdict !== 'pass') {
            failedAt = (Date.now() - routed) / 1000;
            decided = r.reason.slice(0, 160);
            break;
          }
        }
      }
      await target.route({ stable: 100 });
      await target.retire('canary').catch(() => {});
      await target.retire('baseline').catch(() => {});
      if (failedAt !== null) times.push(failedAt);
      log(
        `${scenario} ${i + 1}/${RUNS}: ${failedAt === null ? 'passed' : `failed after ${failedAt} s (${decided})`}`,
      );
    }
    times.sort((a, b) => a - b);
    const rate = times.length / RUNS;
    if (scenario === 'AA') {
      out.false_positive_rate = rate;
      out.prometheus_slo_false_alarms = promFalse;
    } else {
      out[`recall_${scenario}`] = rate;
      out[`detect_median_s_${scenario}`] = times.length ? times[Math.ceil(times.length / 2) - 1] : null;
      out[`detect_max_s_${scenario}`] = times.length ? times.at(-1) : null;
    }
  }
  await load.stop();
  const failed = load.records.filter((r) => r.status === 0 || r.status >= 500).length;
  out.requests = load.records.length;
  out.failed_requests = failed;
  console.log(JSON.stringify(out));
} finally {
  await load?.stop().catch(() => {});
  await target?.destroy?.().catch(() => {});
  await prom?.stop().catch(() => {});
  await remove();
}
