import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createReleaseEngine,
  fileStore,
  type Notifier,
  ReleaseError,
  rolling,
  type Target,
} from '../src/index.js';
import { directoryBackup, releaseEnv } from './helpers/release-env.js';

type Env = Awaited<ReturnType<typeof releaseEnv>>;
let env: Env | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

async function journalText(e: Env): Promise<string> {
  const dir = join(e.dir, 'store', 'runs');
  const files = await fs.readdir(dir).catch(() => [] as string[]);
  return (await Promise.all(files.map((f) => fs.readFile(join(dir, f), 'utf8')))).join('');
}

describe('release engine on the embedded local target', () => {
  it('releases v1, then rolls v2 out batch by batch and records both as good', async () => {
    env = await releaseEnv();
    const first = await env.engine.release({ version: 'v1' });
    expect(first).toMatchObject({ status: 'succeeded', serving: 'v1', from: undefined });
    expect(await env.serving()).toBe('v1');

    const second = await env.engine.release({ version: 'v2', reason: 'weekly release' });
    expect(second).toMatchObject({ status: 'succeeded', version: 'v2', from: 'v1', serving: 'v2' });
    expect(await env.serving()).toBe('v2');
    const state = await env.target.describe();
    expect(state.pools.map((p) => [p.name, p.version, p.replicas, p.weight])).toEqual([['v2', 'v2', 2, 100]]);
    // Two batches gated by analysis, then the verify phase.
    expect(second.analyses.map((a) => [a.name, a.verdict])).toEqual([
      ['batch-1', 'pass'],
      ['batch-2', 'pass'],
      ['verify', 'pass'],
    ]);
    const history = await env.engine.history();
    expect(history.map((h) => [h.version, h.status, h.serving])).toEqual([
      ['v1', 'succeeded', 'v1'],
      ['v2', 'succeeded', 'v2'],
    ]);
    // Every action is journaled before and after it runs.
    const journal = await env.make().resume(second.runId);
    expect(journal.status).toBe('succeeded');
    const lines = (await journalText(env))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const started = lines
      .filter((l) => l.type === 'step-started' && l.key.startsWith('deploy/'))
      .map((l) => l.key);
    const finished = lines
      .filter((l) => l.type === 'step-finished' && l.key.startsWith('deploy/'))
      .map((l) => l.key);
    expect(started.length).toBeGreaterThan(4);
    expect(finished).toEqual(started);
    // Phases read like the runbook in the log.
    expect(env.logger.lines.some((l) => l.includes('release v2: phase deploy started'))).toBe(true);
    expect(env.events.filter((e) => e.type === 'traffic.shifted').length).toBeGreaterThan(2);
  });

  it('rolls back automatically when the new version fails its batch analysis, and verifies the old one', async () => {
    env = await releaseEnv({ faults: { v3: { FAULT_ERROR_RATE: '1' } } });
    await env.engine.release({ version: 'v2' });
    const result = await env.engine.release({ version: 'v3' });
    expect(result.status).toBe('rolled-back');
    expect(result.serving).toBe('v2');
    expect(result.error).toMatchObject({ code: 'CG_ANALYSIS_FAILED' });
    expect(result.reason).toMatch(/analysis batch-1 ended fail/);
    expect(result.analyses.at(-1)).toMatchObject({ name: 'verify-restored', verdict: 'pass' });
    expect(result.incident).toMatchObject({ severity: 'P2', to: 'v2', from: 'v3', status: 'rolled-back' });
    expect(await env.serving()).toBe('v2');
    const pools = (await env.target.describe()).pools;
    expect(pools.map((p) => [p.name, p.weight, p.replicas])).toEqual([['v2', 100, 2]]);
    const finished = env.events.find((e) => e.type === 'run.finished' && e.version === 'v3');
    expect(finished).toMatchObject({ status: 'rolled-back' });
  });

  it('plans a release without touching the target or the journal', async () => {
    env = await releaseEnv();
    await env.engine.release({ version: 'v1' });
    const before = await env.target.describe();
    const runsBefore = await fs.readdir(join(env.dir, 'store', 'runs'));
    const plan = await env.engine.plan({ version: 'v2' });
    expect(plan).toMatchObject({ from: 'v1', version: 'v2', strategy: 'rolling', replicas: 2 });
    expect(plan.steps[0]).toBe('provision v2 = v2 x1');
    expect(plan.steps.at(-1)).toBe('promote v2');
    expect(await env.target.describe()).toEqual(before);
    expect(await fs.readdir(join(env.dir, 'store', 'runs'))).toEqual(runsBefore);
  });

  it('refuses an unconfirmed emergency rollback and one to an unknown version, changing nothing', async () => {
    env = await releaseEnv();
    await env.engine.release({ version: 'v1' });
    await env.engine.release({ version: 'v2' });
    const runs = await fs.readdir(join(env.dir, 'store', 'runs'));
    await expect(
      env.engine.rollback({ to: 'v1', reason: 'p95 doubled', confirm: 'confirm' }),
    ).rejects.toMatchObject({
      code: 'CG_ROLLBACK_UNCONFIRMED',
    });
    await expect(
      env.engine.rollback({ to: 'v0.9', reason: 'p95 doubled', confirm: 'CONFIRM' }),
    ).rejects.toMatchObject({
      code: 'CG_VERSION_UNKNOWN',
    });
    await expect(env.engine.rollback({ to: 'v1', reason: ' ', confirm: 'CONFIRM' })).rejects.toMatchObject({
      code: 'CG_CONFIG_INVALID',
    });
    expect(await fs.readdir(join(env.dir, 'store', 'runs'))).toEqual(runs);
    expect(await env.serving()).toBe('v2');
  });

  it('runs a confirmed emergency rollback through backup, database rollback, application rollback and verification', async () => {
    const migrations: unknown[] = [];
    env = await releaseEnv();
    const data = join(env.dir, 'data');
    await fs.mkdir(data);
    await fs.writeFile(join(data, 'CURRENT'), 'MANIFEST-000001\n');
    const backup = directoryBackup(data, join(env.dir, 'backups'));
    const engine = env.make({
      backup,
      databaseRollback: async ({ migrations: m }) => {
        migrations.push(...m);
      },
    });
    await engine.release({ version: 'v1' });
    await engine.release({ version: 'v2', migration: { id: '0042_add_index', down: 'drop index' } });
    const result = await engine.rollback({
      to: 'v1',
      reason: 'Critical performance regression',
      confirm: 'CONFIRM',
    });
    expect(result).toMatchObject({ kind: 'rollback', status: 'succeeded', from: 'v2', serving: 'v1' });
    expect(migrations).toEqual([{ id: '0042_add_index', down: 'drop index' }]);
    expect(backup.created.map((b) => b.reason)).toEqual(['pre-release', 'pre-release', 'pre-rollback']);
    expect(result.backupId).toBe('b3');
    expect(result.incident).toMatchObject({
      severity: 'P1',
      reason: 'Critical performance regression',
      from: 'v2',
      to: 'v1',
      backupId: 'b3',
      status: 'succeeded',
    });
    expect(result.incident?.actions.some((a) => a.startsWith('database rollback'))).toBe(true);
    expect(await env.serving()).toBe('v1');
    const phases = env.events
      .filter((e) => e.runId === result.runId && e.type === 'phase.started')
      .map((e) => e.type === 'phase.started' && e.phase);
    expect(phases).toEqual(['preflight', 'backup', 'database-rollback', 'undo', 'verify']);
  });

  it('refuses a rollback past a recorded migration when no databaseRollback hook is configured', async () => {
    env = await releaseEnv();
    await env.engine.release({ version: 'v1' });
    await env.engine.release({ version: 'v2', migration: { id: '7' } });
    await expect(env.engine.rollback({ to: 'v1', reason: 'bad', confirm: 'CONFIRM' })).rejects.toMatchObject({
      code: 'CG_CONFIG_INVALID',
    });
    expect(await env.serving()).toBe('v2');
  });

  it('lets only one of two engines release an environment at a time', async () => {
    env = await releaseEnv();
    await env.engine.release({ version: 'v1' });
    const other = env.make();
    const results = await Promise.allSettled([
      env.engine.release({ version: 'v2' }),
      other.release({ version: 'v3' }),
    ]);
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused).toHaveLength(1);
    expect((refused[0] as PromiseRejectedResult).reason).toBeInstanceOf(ReleaseError);
    expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'CG_ENVIRONMENT_LOCKED' });
    const ok = results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{
      status: string;
      version: string;
    }>;
    expect(ok.value.status).toBe('succeeded');
    expect(await env.serving()).toBe(ok.value.version);
  });

  it('keeps secrets out of the journal, the logs, the events and the result', async () => {
    const secret = 'sk-live-7f3a9c2e1d';
    env = await releaseEnv({ faults: { v2: { FAULT_ERROR_RATE: '1' } } });
    const leaky = {
      name: 'leaky',
      async verify() {
        throw new Error(
          `upstream rejected Authorization: Bearer ${secret} at https://user:${secret}@metrics.internal/api`,
        );
      },
    };
    const engine = env.make({ secrets: [secret], verifiers: [leaky] });
    const result = await engine.release({
      version: 'v1',
      reason: `token ${secret}`,
      labels: { apiKey: secret },
    });
    expect(result.status).toBe('failed');
    // A failed first release leaves nothing running unseen.
    expect((await env.target.describe()).pools).toEqual([]);
    const everything = [
      await journalText(env),
      env.logger.lines.join('\n'),
      JSON.stringify(env.events),
      JSON.stringify(result),
    ].join('\n');
    expect(everything).toContain('upstream rejected');
    expect(everything).not.toContain(secret);
  });

  it('refuses invalid configuration and arguments before any side effect', async () => {
    env = await releaseEnv();
    const store = fileStore({ dir: join(env.dir, 'store') });
    const base = { environment: 'prod', target: env.target, strategy: rolling(), store };
    expect(() => createReleaseEngine({ ...base, environment: '../prod' })).toThrowError(
      expect.objectContaining({ code: 'CG_CONFIG_INVALID' }),
    );
    const noRoute: Target = {
      name: 'static',
      describe: env.target.describe,
      provision: env.target.provision,
      retire: env.target.retire,
    };
    expect(() => createReleaseEngine({ ...base, target: noRoute })).toThrowError(
      /needs target capability "route"/,
    );
    expect(() => createReleaseEngine({ ...base, replicas: 0 })).toThrowError(
      expect.objectContaining({ code: 'CG_CONFIG_INVALID' }),
    );
    const verifier = { name: 'x', verify: async () => ({ verdict: 'pass' as const, checks: [] }) };
    expect(() => createReleaseEngine({ ...base, verifiers: [verifier, verifier] })).toThrowError(
      /two verifiers/,
    );
    await expect(env.engine.release({ version: 'v1; rm -rf /' })).rejects.toMatchObject({
      code: 'CG_CONFIG_INVALID',
    });
    await expect(env.engine.release({ version: '' })).rejects.toMatchObject({ code: 'CG_CONFIG_INVALID' });
    await expect(fs.readdir(join(env.dir, 'store'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await env.target.describe()).pools).toEqual([]);
  });

  it('delivers to notifiers in isolation: a failing and a hanging notifier never fail the release', async () => {
    env = await releaseEnv();
    const delivered: string[] = [];
    const good: Notifier = {
      name: 'good',
      events: ['run.finished'],
      notify: async (e) => void delivered.push(e.type),
    };
    const broken: Notifier = {
      name: 'broken',
      notify: async () => {
        throw Object.assign(new Error('503 from https://hooks.slack.com/services/T000/B000/XXXX'), {
          code: 'ECONNRESET',
        });
      },
    };
    const hanging: Notifier = {
      name: 'hanging',
      events: ['run.finished'],
      notify: (_e, ctx) =>
        new Promise((_, reject) => ctx?.signal?.addEventListener('abort', () => reject(ctx.signal?.reason))),
    };
    const registry = new Registry();
    const engine = env.make({
      notifiers: [good, broken, hanging],
      delivery: { timeoutMs: 500, retry: { retries: 1, minTimeoutMs: 10, maxTimeoutMs: 10 } },
      metrics: { registry },
    });
    const result = await engine.release({ version: 'v1' });
    expect(result.status).toBe('succeeded');
    // The run does not wait for deliveries; close() does, within its bound.
    await engine.close();
    expect(delivered).toEqual(['run.finished']);
    const failures = env.events.filter((e) => e.type === 'notification.failed');
    expect(new Set(failures.map((f) => f.type === 'notification.failed' && f.notifier))).toEqual(
      new Set(['broken', 'hanging']),
    );
    expect(JSON.stringify(failures)).not.toContain('XXXX');
    const text = await registry.metrics();
    expect(text).toMatch(
      /codegraph_release_notification_failures_total\{environment="staging",notifier="hanging"\} 1/,
    );
    expect(text).toMatch(
      /codegraph_release_runs_total\{environment="staging",kind="release",status="succeeded"\} 1/,
    );
    expect(text).toMatch(/codegraph_release_traffic_weight\{environment="staging",pool="v1"\} 100/);
  });

  it('streams events as an async iterator until its signal aborts', async () => {
    env = await releaseEnv();
    const stop = new AbortController();
    const seen: string[] = [];
    const reader = (async () => {
      for await (const e of env!.engine.events({
        signal: stop.signal,
        types: ['phase.started', 'run.finished'],
      })) {
        seen.push(e.type === 'phase.started' ? e.phase : e.type);
        if (e.type === 'run.finished') stop.abort();
      }
    })();
    await env.engine.release({ version: 'v1' });
    await reader;
    expect(seen).toEqual(['preflight', 'backup', 'deploy', 'verify', 'run.finished']);
  });
});

describe('operator control of a running release', () => {
  it('undoes a release aborted by the operator and reports CG_ABORTED', async () => {
    env = await releaseEnv();
    await env.engine.release({ version: 'v1' });
    env.engine.on('action.started', (e) => {
      if (e.action.type === 'analyze') env!.engine.abort(e.runId, 'wrong build');
    });
    const result = await env.engine.release({ version: 'v2' });
    expect(result).toMatchObject({ status: 'rolled-back', serving: 'v1', error: { code: 'CG_ABORTED' } });
    expect(result.reason).toMatch(/aborted by operator: wrong build/);
    expect(await env.serving()).toBe('v1');
  });

  it('cancels through the caller signal and still completes the undo', async () => {
    env = await releaseEnv();
    await env.engine.release({ version: 'v1' });
    const cancel = new AbortController();
    env.engine.on('traffic.shifted', () => cancel.abort(new Error('deploy window closed')));
    const result = await env.engine.release({ version: 'v2', signal: cancel.signal });
    expect(result.status).toBe('rolled-back');
    expect(result.error).toMatchObject({
      code: 'CG_ABORTED',
      message: 'deploy was cancelled: deploy window closed',
    });
    expect((await env.target.describe()).pools.map((p) => [p.version, p.weight])).toEqual([['v1', 100]]);
  });
});

describe('an emergency rollback during a release of the same engine', () => {
  it('aborts the running release (which undoes itself) and then rolls back, instead of waiting for the lock', async () => {
    env = await releaseEnv();
    await env.engine.release({ version: 'v1' });
    await env.engine.release({ version: 'v2' });
    // v3 waits at an approval pause that nobody will give.
    const engine = env.make({
      strategy: {
        name: 'gated',
        requires: ['route'],
        *deploy({ version, replicas, stable }) {
          yield { type: 'provision', pool: version, version, replicas };
          yield { type: 'route', weights: { [stable!.name]: 50, [version]: 50 } };
          yield { type: 'pause' };
          yield { type: 'route', weights: { [version]: 100 } };
          yield { type: 'promote', pool: version };
        },
        undo: rolling().undo,
      },
    });
    const paused = new Promise<void>((resolve) =>
      engine.on('action.started', (e) => e.action.type === 'pause' && resolve()),
    );
    const release = engine.release({ version: 'v3' });
    await paused;
    const rollback = await engine.rollback({ to: 'v1', reason: 'v3 pages at 50 %', confirm: 'CONFIRM' });
    const released = await release;
    expect(released).toMatchObject({ status: 'rolled-back', error: { code: 'CG_ABORTED' } });
    expect(released.reason).toMatch(/superseded by an emergency rollback to v1/);
    expect(rollback).toMatchObject({ kind: 'rollback', status: 'succeeded', from: 'v2', serving: 'v1' });
    expect(await env.serving()).toBe('v1');
  });
});
