import { afterEach, describe, expect, it } from 'vitest';
import { createPipeline, type Notifier, type ReleaseEvent, rolling } from '../src/index.js';
import { pipelineEnv } from './helpers/pipeline-env.js';
import { serviceChecks } from './helpers/release-env.js';

const MIN = 60_000;
let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups) await fn();
  cleanups = [];
});
async function env(options: Parameters<typeof pipelineEnv>[0]) {
  const e = await pipelineEnv(options);
  cleanups.push(e.cleanup);
  return e;
}

describe('pipeline: soak', () => {
  it('production refuses a version that has not served staging for its soak, and takes it after', async () => {
    const told: ReleaseEvent[] = [];
    const notifier: Notifier = { name: 'record', notify: async (event) => void told.push(event) };
    const e = await env({ production: { soakMs: 10 * MIN }, pipeline: { notifiers: [notifier] } });
    let ownerAtFinish: Promise<unknown> | undefined;
    e.pipeline.on('pipeline.finished', () => {
      ownerAtFinish = e.store.lockOwner('pipeline.search');
    });
    const done = e.pipeline.promote('v1');
    await e.until((ev) => ev.type === 'pipeline.waiting' && ev.stage === 'production');
    expect(await e.serving(e.staging)).toBe('v1');

    const status = await e.pipeline.status();
    expect(status.run).toMatchObject({ version: 'v1', state: 'running' });
    expect(status.stages[0]).toMatchObject({ stage: 'staging', serving: 'v1', state: 'succeeded' });
    expect(status.stages[1]).toMatchObject({
      stage: 'production',
      state: 'waiting',
      until: '2026-06-01T10:10:00.000Z',
    });
    expect(status.stages[1]!.waitingFor.map((w) => w.gate)).toEqual(['soak']);
    // Still waiting a minute before the soak ends: production has served nothing.
    e.clock.advance(9 * MIN);
    await new Promise((r) => setTimeout(r, 300));
    expect((await e.production.engine.status()).serving).toBeUndefined();

    e.clock.advance(MIN);
    const result = await done;
    expect(result).toMatchObject({ status: 'succeeded', reached: 'production', version: 'v1' });
    expect(await e.serving(e.production)).toBe('v1');
    // "finished" is said once the lease is let go of: the next promotion may start at once.
    expect(await ownerAtFinish).toBeUndefined();
    const started = e.events.find((ev) => ev.type === 'pipeline.stage.started' && ev.stage === 'production');
    expect(Date.parse(started!.time)).toBeGreaterThanOrEqual(Date.parse('2026-06-01T10:10:00Z'));
    // Notifiers hear the pipeline as one run of kind "pipeline".
    expect(told.map((t) => [t.type, t.kind, t.environment])).toEqual([
      ['run.started', 'pipeline', 'pipeline.search'],
      ['run.finished', 'pipeline', 'pipeline.search'],
    ]);
    expect(told[1]).toMatchObject({
      status: 'succeeded',
      version: 'v1',
      serving: 'v1',
      reason: 'reached production',
    });
  });
});

describe('pipeline: soak ends only if the version still serves', () => {
  it('a version rolled back in staging during its soak never reaches production', async () => {
    const e = await env({ production: { soakMs: 10 * MIN } });
    const first = e.pipeline.promote('v1');
    await e.until((ev) => ev.type === 'pipeline.waiting' && ev.stage === 'production');
    e.clock.advance(10 * MIN);
    expect((await first).status).toBe('succeeded');

    const second = e.pipeline.promote('v2');
    await e.until(
      (ev) => ev.type === 'pipeline.stage.finished' && ev.stage === 'staging' && ev.serving === 'v2',
    );
    const back = await e.pipeline.rollback('staging', {
      to: 'v1',
      reason: 'v2 leaks memory',
      confirm: 'CONFIRM',
    });
    expect(back.status).toBe('succeeded');
    e.clock.advance(10 * MIN);
    const result = await second;
    expect(result).toMatchObject({ status: 'failed', reached: 'staging', stoppedAt: 'production' });
    expect(result.reason).toContain('v2 no longer serves staging (it serves v1)');
    expect(await e.serving(e.production)).toBe('v1');
  });
});

describe('pipeline: windows', () => {
  it('a window that closes mid-promotion lets the running stage finish and holds the next one', async () => {
    const window = {
      action: 'allow' as const,
      cron: '0 9 * * 1-5',
      durationMs: 8 * 60 * MIN,
      timeZone: 'UTC',
    };
    // Friday 16:55 UTC: the window closes at 17:00.
    const e = await env({
      clock: '2026-06-05T16:55:00Z',
      staging: { windows: [window] },
      production: { windows: [window] },
    });
    e.pipeline.on('pipeline.stage.started', (ev) => {
      if (ev.type === 'pipeline.stage.started' && ev.stage === 'staging') e.clock.set('2026-06-05T17:05:00Z');
    });
    const done = e.pipeline.promote('v1');
    const waiting = await e.until((ev) => ev.type === 'pipeline.waiting' && ev.stage === 'production');
    expect(
      e.events.find((ev) => ev.type === 'pipeline.stage.finished' && ev.stage === 'staging'),
    ).toMatchObject({
      status: 'succeeded',
    });
    expect(waiting).toMatchObject({
      waitingFor: [
        { gate: 'window', detail: 'outside every allow window', until: '2026-06-08T09:00:00.000Z' },
      ],
    });
    expect(await e.serving(e.staging)).toBe('v1');
    expect((await e.production.engine.status()).serving).toBeUndefined();

    e.clock.set('2026-06-08T09:01:00Z');
    expect(await done).toMatchObject({ status: 'succeeded', reached: 'production' });
    expect(await e.serving(e.production)).toBe('v1');
  });

  it('an emergency rollback is never blocked by a freeze', async () => {
    const e = await env({});
    expect((await e.pipeline.promote('v1')).status).toBe('succeeded');
    expect((await e.pipeline.promote('v2')).status).toBe('succeeded');
    expect(await e.serving(e.production)).toBe('v2');

    // The same environments under a freeze: a promotion waits, the rollback goes through.
    const frozen = await env({
      production: {
        engine: e.production.engine,
        target: e.production.target,
        windows: [
          {
            action: 'deny',
            from: '2026-01-01',
            to: '2027-01-01',
            timeZone: 'UTC',
            reason: 'incident freeze',
          },
        ],
      },
      staging: { engine: e.staging.engine, target: e.staging.target },
    });
    const plan = await frozen.pipeline.plan('v3');
    expect(plan.stages[1]!.constraints).toContain('incident freeze until 2027-01-01T00:00:00.000Z');
    const back = await frozen.pipeline.rollback('production', {
      to: 'v1',
      reason: 'errors after v2',
      confirm: 'CONFIRM',
    });
    expect(back.status).toBe('succeeded');
    expect(await e.serving(e.production)).toBe('v1');
    await expect(
      frozen.pipeline.rollback('production', { to: 'v2', reason: 'no confirmation', confirm: 'yes' }),
    ).rejects.toMatchObject({ code: 'CG_ROLLBACK_UNCONFIRMED' });
  });
});

describe('pipeline: plan and input', () => {
  it('plans the earliest start of each stage from soak, expected durations and windows', async () => {
    const e = await env({
      clock: '2026-06-05T15:00:00Z',
      staging: { expectedDurationMs: 20 * MIN },
      production: {
        soakMs: 60 * MIN,
        approval: { required: 2, approvers: ['alice', 'bob', 'carol'] },
        windows: [{ action: 'allow', cron: '0 9 * * 1-5', durationMs: 8 * 60 * MIN, timeZone: 'UTC' }],
      },
    });
    const plan = await e.pipeline.plan('v1');
    expect(plan.stages.map((s) => [s.stage, s.earliestStart])).toEqual([
      ['staging', '2026-06-05T15:00:00.000Z'],
      ['production', '2026-06-05T16:20:00.000Z'],
    ]);
    expect(plan.stages[1]!.approval).toEqual({ required: 2, approvers: ['alice', 'bob', 'carol'] });
    expect(plan.stages[1]!.plan.steps.length).toBeGreaterThan(0);
    // A first rolling release of one replica: its pool is analysed before it takes any traffic.
    expect(plan.stages[1]!.exposure).toEqual({
      trafficBeforeFirstAnalysisPercent: 0,
      analysesBeforeFullTraffic: 1,
    });
    // Later in the day the soak ends after the window closes: Monday 09:00.
    e.clock.set('2026-06-05T16:00:00Z');
    expect((await e.pipeline.plan('v1')).stages[1]!.earliestStart).toBe('2026-06-08T09:00:00.000Z');
  });

  it('refuses bad input before anything runs', async () => {
    const e = await env({});
    await expect(e.pipeline.promote('not a version!')).rejects.toMatchObject({ code: 'CG_CONFIG_INVALID' });
    expect(await e.store.runs('pipeline.search')).toEqual([]);
    const base = { name: 'p', store: e.store };
    const stage = { name: 's', engine: e.staging.engine };
    for (const bad of [
      { ...base, stages: [] },
      { ...base, stages: [stage, { ...stage }] },
      { ...base, stages: [{ ...stage, soakMs: 1000 }] },
      { ...base, stages: [{ ...stage, approval: { required: 3, approvers: ['a', 'b'] } }] },
      { ...base, stages: [{ ...stage, approval: { required: 1, approvers: ['a', 'a'] } }] },
      {
        ...base,
        stages: [
          {
            ...stage,
            verify: { verifiers: [{ name: 'x', verify: async () => ({ verdict: 'pass', checks: [] }) }] },
          },
        ],
      },
      { ...base, name: 'bad name', stages: [stage] },
    ]) {
      expect(() => createPipeline(bad as never)).toThrow(
        expect.objectContaining({ code: 'CG_CONFIG_INVALID' }),
      );
    }
    // A stage may give its engine's options instead: the pipeline creates the engine (and closes it).
    const made = createPipeline({
      name: 'p',
      store: e.store,
      stages: [
        {
          name: 'qa',
          engine: {
            environment: 'qa',
            target: e.staging.target,
            strategy: rolling(),
            store: e.store,
            metrics: false,
          },
          verify: { verifiers: [serviceChecks] },
        },
      ],
    });
    expect(made.stages.map((s) => s.engine.environment)).toEqual(['qa']);
    await made.close();
  });
});

describe('pipeline: a store that stops answering', () => {
  it('fails the promotion within storeMs with CG_STORE_UNAVAILABLE, leaves its lease free, and reaches no stage after', async () => {
    const { fileStore } = await import('../src/index.js');
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const real = fileStore({ dir: await mkdtemp(join(tmpdir(), 'cg-pipeline-stall-')) });
    // The store journals the pipeline's header, then never answers an append again.
    let appends = 0;
    const stalling = new Proxy(real, {
      get(t, key) {
        if (key === 'name') return 'stalling-store';
        if (key === 'append')
          return (...args: Parameters<typeof real.append>) =>
            ++appends > 1 ? new Promise(() => {}) : t.append(...args);
        const v = Reflect.get(t, key);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    }) as typeof real;
    const e = await env({ pipeline: { store: stalling, storeMs: 300 } });
    const outcome = await e.pipeline.promote('v1').then(
      (r) => (r as { error?: unknown }).error ?? r,
      (err: unknown) => err,
    );
    expect(outcome).toMatchObject({ code: 'CG_STORE_UNAVAILABLE' });
    expect(appends).toBeGreaterThan(1);
    expect(await real.lockOwner('pipeline.search')).toBeUndefined();
    expect((await e.production.engine.history()).length).toBe(0);
  });

  it('refuses a storeMs that is not a positive number of milliseconds', async () => {
    const e = await env({});
    const stages = [{ name: 'staging', engine: e.staging.engine, target: e.staging.target }];
    expect(() => createPipeline({ name: 'x', store: e.store, stages, storeMs: -1 })).toThrow(/storeMs/);
    expect(() => createPipeline({ name: 'x', store: e.store, stages, storeMs: Number.NaN })).toThrow(
      expect.objectContaining({ code: 'CG_CONFIG_INVALID' }),
    );
    expect(createPipeline({ name: 'x', store: e.store, stages, storeMs: 1_000 }).stages).toHaveLength(1);
  });
});
