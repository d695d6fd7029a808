import type { ReleaseEvent, RunResult } from '@codegraph/release-core';
import { blueGreen } from '@codegraph/strategy-bluegreen';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Answer,
  blueGreenEnv,
  loadGenerator,
  poolPids,
  proxyLatency,
  until,
  validationSuite,
} from './helpers/env.js';

// End to end on the embedded localTarget: real sample-service replicas behind the real weighted proxy,
// real HTTP load through the proxy, the real engine and file store.

let cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  const errors: unknown[] = [];
  for (const fn of cleanups.reverse()) await fn().catch((err) => errors.push(err));
  cleanups = [];
  if (errors.length > 0) throw errors[0];
});

async function setup(options: Parameters<typeof blueGreenEnv>[0] = {}) {
  const env = await blueGreenEnv(options);
  cleanups.push(async () => expect(await env.cleanup(), 'processes left running').toEqual([]));
  // v1 comes up with plain settings (no load runs yet for production-traffic analyses to measure).
  const plain = env.make({ strategy: blueGreen({ scaleDownDelayMs: 0 }), verifiers: [validationSuite()] });
  const first = await plain.release({ version: 'v1' });
  expect(first).toMatchObject({ status: 'succeeded', serving: 'v1' });
  const load = loadGenerator(await env.target.endpoint());
  cleanups.push(() => load.stop());
  await load.answeredBy('v1', 20);
  return { ...env, load };
}

/** When the engine started and finished the route action of a phase (performance.now() times). */
function switchWindow(events: Array<ReleaseEvent & { at: number }>, phase: string, runId: string) {
  const of = (type: string) =>
    events.find(
      (e) =>
        e.type === type &&
        e.runId === runId &&
        'phase' in e &&
        e.phase === phase &&
        'action' in e &&
        e.action.type === 'route',
    )?.at;
  const started = of('action.started');
  const finished = of('action.finished');
  if (started === undefined || finished === undefined) throw new Error(`no route in ${phase} of ${runId}`);
  return { started, finished };
}

const before = (answers: Answer[], t: number) => answers.filter((a) => a.end < t);
const after = (answers: Answer[], t: number) => answers.filter((a) => a.start > t);

describe('blue-green on localTarget under continuous load', () => {
  it('switches every request from blue to green at once, keeps blue warm for the delay, then retires it, with zero failed requests', async () => {
    const env = await setup({ strategy: { scaleDownDelayMs: 1_500 } });
    const bluePids = poolPids(env.stateDir, 'blue');
    let warm: unknown;
    env.engine.on('action.started', (e) => {
      if (e.action.type === 'pause') warm = env.target.describe();
    });
    const plan = await env.engine.plan({ version: 'v2' });
    const result = await env.engine.release({ version: 'v2' });
    await env.load.answeredBy('v2', 20);
    const answers = await env.load.stop();

    expect(plan.steps).toEqual([
      'provision green = v2 x2',
      'analyze pre-promotion (green)',
      'route green=100%',
      'analyze post-promotion (green)',
      'promote green',
      'pause 1500 ms',
      'retire blue',
    ]);
    expect(result).toMatchObject({ status: 'succeeded', from: 'v1', serving: 'v2' });
    expect(answers.filter((a) => !a.ok)).toEqual([]);
    const sw = switchWindow(env.events, 'deploy', result.runId);
    // Production never saw the preview before the switch, and saw only green once it returned.
    expect(before(answers, sw.started).filter((a) => a.version !== 'v1')).toEqual([]);
    expect(after(answers, sw.finished).filter((a) => a.version !== 'v2' || a.pool !== 'green')).toEqual([]);
    expect(before(answers, sw.started).length).toBeGreaterThan(0);
    // During the scale-down delay blue ran at full size with no traffic: the same processes as before.
    const during = await (warm as ReturnType<typeof env.target.describe>);
    expect(during.pools.map((p) => [p.name, p.version, p.weight, p.ready]).sort()).toEqual([
      ['blue', 'v1', 0, 2],
      ['green', 'v2', 100, 2],
    ]);
    expect(env.actions('deploy', result.runId)).toEqual([
      'provision green',
      'analyze',
      'route',
      'analyze',
      'promote green',
      'pause',
      'retire blue',
    ]);
    expect(bluePids.length).toBe(2);
    const state = await env.target.describe();
    expect(state.pools.map((p) => [p.name, p.version, p.weight])).toEqual([['green', 'v2', 100]]);
  });

  it.each([
    ['FAULT_MISSING_HEADERS', { FAULT_MISSING_HEADERS: 'strict-transport-security,x-content-type-options' }],
    ['FAULT_ERROR_RATE', { FAULT_ERROR_RATE: '0.2' }],
  ])(
    'never switches to a preview that fails the validation suite (%s): zero answers from it, preview retired',
    async (_, fault) => {
      const env = await setup({ faults: { v2: fault }, strategy: { scaleDownDelayMs: 0 } });
      const result = await env.engine.release({ version: 'v2' });
      await env.load.answeredBy('v1', 20);
      const answers = await env.load.stop();

      expect(result).toMatchObject({ status: 'rolled-back', serving: 'v1' });
      expect(result.analyses.find((a) => a.name === 'pre-promotion')?.verdict).toBe('fail');
      expect(answers.filter((a) => !a.ok)).toEqual([]);
      expect(answers.filter((a) => a.version !== 'v1' || a.pool !== 'blue')).toEqual([]);
      expect(env.actions('deploy', result.runId)).not.toContain('route');
      expect(env.actions('undo', result.runId)).toEqual(['promote blue', 'retire green']);
      const state = await env.target.describe();
      expect(state.pools.map((p) => [p.name, p.version, p.weight])).toEqual([['blue', 'v1', 100]]);
    },
  );

  it('switches back to warm blue at once when green breaks the p95 SLO under production traffic, with zero failed requests', async () => {
    const env = await setup({
      faults: { v2: { FAULT_LATENCY_MS: '300' } },
      verifiers: [validationSuite(), proxyLatency(200)],
      strategy: {
        prePromotionAnalysis: { verifiers: ['http-validation'] },
        postPromotionAnalysis: {
          verifiers: ['proxy-latency'],
          gate: {
            initialDelayMs: 300,
            intervalMs: 300,
            count: 10,
            inconclusiveLimit: 9,
            consecutiveSuccessLimit: 3,
          },
        },
        abortScaleDownDelayMs: 1_000,
      },
    });
    const bluePids = poolPids(env.stateDir, 'blue');
    const result = await env.engine.release({ version: 'v2' });
    await env.load.answeredBy('v1', 20);
    const answers = await env.load.stop();

    expect(result).toMatchObject({ status: 'rolled-back', serving: 'v1' });
    expect(result.analyses.find((a) => a.name === 'post-promotion')?.verdict).toBe('fail');
    expect(answers.filter((a) => !a.ok)).toEqual([]);
    // Green served production traffic between the switch and the switch back, and not after.
    const back = switchWindow(env.events, 'undo', result.runId);
    expect(answers.some((a) => a.version === 'v2')).toBe(true);
    expect(after(answers, back.finished).filter((a) => a.version !== 'v1')).toEqual([]);
    // The switch back used the warm colour: no provision, the same blue processes.
    expect(env.actions('undo', result.runId)).toEqual(['route', 'promote blue', 'pause', 'retire green']);
    expect(poolPids(env.stateDir, 'blue')).toEqual(bluePids);
    const state = await env.target.describe();
    expect(state.pools.map((p) => [p.name, p.version, p.weight])).toEqual([['blue', 'v1', 100]]);
  });

  it('waits for engine.promote before switching when autoPromotion is off, with the preview ready and unseen', async () => {
    const env = await setup({ strategy: { autoPromotion: false, scaleDownDelayMs: 0 } });
    const paused = new Promise<string>((resolve) =>
      env.engine.on('action.started', (e) => {
        if (e.action.type === 'pause') resolve(e.runId);
      }),
    );
    const release = env.engine.release({ version: 'v2' });
    const runId = await paused;
    const state = await env.target.describe();
    expect(state.pools.map((p) => [p.name, p.version, p.weight, p.ready]).sort()).toEqual([
      ['blue', 'v1', 100, 2],
      ['green', 'v2', 0, 2],
    ]);
    await env.load.answeredBy('v1', 20);
    expect(env.load.answers.filter((a) => a.version === 'v2')).toEqual([]);
    expect(env.engine.promote(runId)).toBe(true);
    expect(await release).toMatchObject({ status: 'succeeded', serving: 'v2' });
    await env.load.answeredBy('v2', 20);
    expect((await env.load.stop()).filter((a) => !a.ok)).toEqual([]);
  });

  it('switches back to the warm colour instantly when an emergency rollback comes during the scale-down delay', async () => {
    const env = await setup({ strategy: { scaleDownDelayMs: 60_000, abortScaleDownDelayMs: 0 } });
    const bluePids = poolPids(env.stateDir, 'blue');
    let rollback: Promise<RunResult> | undefined;
    env.engine.on('action.started', (e) => {
      if (e.action.type !== 'pause' || rollback) return;
      // The release still holds the environment: the rollback supersedes it instead of waiting 60 s.
      rollback = env.engine.rollback({ to: 'v1', reason: 'v2 misbehaves', confirm: 'CONFIRM' });
    });
    const result = await env.engine.release({ version: 'v2' });
    const rolledBack = await rollback!;
    await env.load.answeredBy('v1', 20);
    const answers = await env.load.stop();

    expect(result).toMatchObject({ status: 'rolled-back', serving: 'v1', error: { code: 'CG_ABORTED' } });
    expect(result.durationMs).toBeLessThan(60_000);
    expect(rolledBack).toMatchObject({ kind: 'rollback', status: 'succeeded', serving: 'v1' });
    expect(answers.filter((a) => !a.ok)).toEqual([]);
    // The release's own undo switched back to the warm blue: no provision, the same processes.
    expect(env.actions('undo', result.runId)).toEqual(['route', 'promote blue', 'retire green']);
    expect(env.actions('undo', rolledBack.runId)).not.toContain('provision blue');
    expect(poolPids(env.stateDir, 'blue')).toEqual(bluePids);
    expect(await env.serving()).toBe('v1');
  });

  it('switches back to the warm colour instantly when the operator aborts during the scale-down delay', async () => {
    const env = await setup({ strategy: { scaleDownDelayMs: 60_000, abortScaleDownDelayMs: 0 } });
    const bluePids = poolPids(env.stateDir, 'blue');
    env.engine.on('action.started', (e) => {
      if (e.action.type === 'pause') env.engine.abort(e.runId, 'v2 misbehaves: operator abort');
    });
    const result = await env.engine.release({ version: 'v2' });
    await env.load.answeredBy('v1', 20);
    const answers = await env.load.stop();

    expect(result).toMatchObject({ status: 'rolled-back', serving: 'v1' });
    expect(result.durationMs).toBeLessThan(60_000);
    expect(answers.filter((a) => !a.ok)).toEqual([]);
    expect(env.actions('undo', result.runId)).toEqual(['route', 'promote blue', 'retire green']);
    expect(poolPids(env.stateDir, 'blue')).toEqual(bluePids);
  });

  it('brings v1 back in blue when the emergency rollback comes after the delay, when blue is gone', async () => {
    const env = await setup({ strategy: { scaleDownDelayMs: 0, abortScaleDownDelayMs: 0 } });
    expect(await env.engine.release({ version: 'v2' })).toMatchObject({ status: 'succeeded' });
    await until(async () => (await env.serving()) === 'v2', 5_000, 'v2 serving');
    const result = await env.engine.rollback({ to: 'v1', reason: 'v2 corrupts results', confirm: 'CONFIRM' });
    await env.load.answeredBy('v1', 20);
    const answers = await env.load.stop();

    expect(result).toMatchObject({ status: 'succeeded', serving: 'v1' });
    expect(env.actions('undo', result.runId)).toEqual([
      'provision blue',
      'route',
      'promote blue',
      'retire green',
    ]);
    expect(answers.filter((a) => !a.ok)).toEqual([]);
    const state = await env.target.describe();
    expect(state.pools.map((p) => [p.name, p.version, p.weight])).toEqual([['blue', 'v1', 100]]);
  });
});
