import { canary, canaryExposure, canaryJudge } from '@codegraph/strategy-canary';
import { afterEach, describe, expect, it } from 'vitest';
import { engineOn, type Faults, localEnv, shifts } from './helpers/env.js';
import {
  expectRolledBack,
  failedChecks,
  releaseUnderLoad,
  type ScenarioEnv,
  until,
} from './helpers/scenarios.js';

// Judged against a baseline pool by the statistical judge, plus an absolute error-rate limit.
// No early pass (consecutiveSuccessLimit): a sequential judge says "no evidence yet" as a pass, so the
// gate looks at every interval of its count; a bad canary fails as soon as the evidence is in.
const gate = {
  count: 8,
  intervalMs: 500,
  initialDelayMs: 500,
  inconclusiveLimit: 4,
};
const strategy = (extra: Parameters<typeof canary>[0] = {}) =>
  canary({ weights: [20, 40], baseline: true, analysis: { verifiers: ['judge'], gate }, ...extra });
const judge = () => canaryJudge({ thresholds: { errorRate: 0.02 } });

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** v1 released and serving behind the local target's proxy; `faults` apply to the versions named. */
async function serving(faults: Faults, s = strategy()): Promise<ScenarioEnv> {
  const local = await localEnv(faults);
  cleanups.push(local.cleanup);
  const { engine, events } = engineOn(local.target, local.dir, { strategy: s, verifiers: [judge()] });
  const first = await engine.release({ version: 'v1' });
  expect(first.status).toBe('succeeded');
  return { engine, events, target: local.target, front: await local.target.endpoint() };
}

describe('canary on the local target', () => {
  it('plans a release with its worst-case detection time and exposure, changing nothing', async () => {
    const env = await serving({});
    const before = await env.target.describe();
    const plan = await env.engine.plan({ version: 'v2' });
    expect(plan.steps.slice(0, 4)).toEqual([
      'provision v2 = v2 x1',
      'provision baseline-v1 = v1 x1',
      'route v1=60% v2=20% baseline-v1=20%',
      'analyze canary-20 (v2, baseline-v1)',
    ]);
    const e = canaryExposure(plan);
    // The first measurement after 500 ms fails the gate: a bad canary is out within 0.5 s, at 20 or 40 %.
    expect(e.stages.map((s) => [s.weight, s.detectMs, s.exposedWeight])).toEqual([
      [20, 500, 20],
      [40, 500, 40],
    ]);
    // The dry run reports the same figures itself.
    expect(plan.summary).toEqual({ exposure: e });
    expect(await env.target.describe()).toEqual(before);
  });

  it('promotes a good version through every step with no failed request', async () => {
    const env = await serving({});
    const run = await releaseUnderLoad(env, 'v2');
    expect(run.result.status, run.result.reason).toBe('succeeded');
    expect(run.result.analyses.map((a) => [a.name, a.verdict])).toEqual([
      ['canary-20', 'pass'],
      ['canary-40', 'pass'],
      ['verify', 'pass'],
    ]);
    expect(shifts(run.events).map((s) => s.weights)).toEqual([
      { v1: 60, v2: 20, 'baseline-v1': 20 },
      { v1: 20, v2: 40, 'baseline-v1': 40 },
      { v2: 100 },
    ]);
    expect(run.samples.filter((s) => s.status !== 200)).toEqual([]);
    expect(new Set(run.samples.map((s) => s.pool))).toEqual(new Set(['v1', 'v2', 'baseline-v1']));
    expect((await env.target.describe()).pools.map((p) => [p.name, p.weight])).toEqual([['v2', 100]]);
  });

  it('rolls traffic back to stable when the canary answers five times slower', async () => {
    const env = await serving({ v2: { FAULT_LATENCY_MS: '25' } });
    const run = await releaseUnderLoad(env, 'v2');
    expect(failedChecks(run.result.analyses)).toContain('latency.mann_whitney');
    expect(run.result.analyses[0]).toMatchObject({ name: 'canary-20', verdict: 'fail' });
    await expectRolledBack(env, run, 'v2', 'v1');
  });

  it('rolls traffic back to stable when 5 % of the canary requests fail', async () => {
    const env = await serving({ v2: { FAULT_ERROR_RATE: '0.05' } });
    const run = await releaseUnderLoad(env, 'v2');
    expect(failedChecks(run.result.analyses).some((c) => c.startsWith('errors.'))).toBe(true);
    await expectRolledBack(env, run, 'v2', 'v1');
  });

  it('skips the remaining steps when an operator promotes fully at a pause', async () => {
    const steps = [
      { setWeight: 10 },
      { pause: {} },
      { setWeight: 30 },
      { analysis: { verifiers: ['judge'], gate } },
    ];
    const env = await serving({}, canary({ steps }));
    env.engine.on('action.started', (e) => {
      if (e.action.type === 'pause') env.engine.promote(e.runId, { full: true });
    });
    const run = await releaseUnderLoad(env, 'v2');
    expect(run.result.status, run.result.reason).toBe('succeeded');
    expect(shifts(run.events).map((s) => s.weights)).toEqual([{ v1: 90, v2: 10 }, { v2: 100 }]);
    expect(run.result.analyses.map((a) => a.name)).toEqual(['verify']);
  });

  it('rolls back when an operator aborts at a pause, and a retry of the same version goes through', async () => {
    const steps = [
      { setWeight: 10 },
      { pause: {} },
      { setWeight: 30 },
      { analysis: { verifiers: ['judge'], gate } },
    ];
    const env = await serving({}, canary({ steps }));
    let attempt = 0;
    env.engine.on('action.started', (e) => {
      if (e.action.type !== 'pause') return;
      attempt++;
      if (attempt > 1) {
        env.engine.promote(e.runId);
        return;
      }
      // The operator watches the canary take traffic at the pause, then aborts.
      void (async () => {
        const seen = (await env.target.traffic!('v2')).requests;
        await until(
          async () => (await env.target.traffic!('v2')).requests >= seen + 20,
          10_000,
          'canary traffic at the pause',
        );
        env.engine.abort(e.runId, 'operator saw a bad dashboard');
      })();
    });
    const aborted = await releaseUnderLoad(env, 'v2');
    await expectRolledBack(env, aborted, 'v2', 'v1');
    expect(aborted.result.reason).toMatch(/operator saw a bad dashboard/);

    const retried = await releaseUnderLoad(env, 'v2');
    expect(retried.result.status, retried.result.reason).toBe('succeeded');
    expect(retried.result.analyses.map((a) => [a.name, a.verdict])).toEqual([
      ['canary-30', 'pass'],
      ['verify', 'pass'],
    ]);
    expect(retried.samples.filter((s) => s.status !== 200)).toEqual([]);
  });
});
