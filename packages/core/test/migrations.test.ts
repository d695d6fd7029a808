import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { backfill, type MigrationStep, type MigrationStepsRecord, validateCounts } from '../src/index.js';
import { releaseEnv } from './helpers/release-env.js';
import { ldbPut, makeDatabase, run, scanDatabase, tempDirs } from './recovery-helpers.js';

// The release plan's staged runbook on a real RocksDB database (db_bench + ldb): apply an index, run a
// backfill in batches with stop-on-error, validate counts; every step has its rollback.
const dirs = tempDirs();
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
  await dirs.cleanup();
});

const USERS = 10;
const users = Object.fromEntries(
  Array.from({ length: USERS }, (_, i) => [`user:${String(i).padStart(3, '0')}`, `name-${i}`]),
);

/** `key : value` lines of the keys starting with `prefix`. */
async function prefixed(db: string, prefix: string): Promise<Array<[string, string]>> {
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  return (await scanDatabase(db, prefix, end))
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.split(' : ') as [string, string]);
}

function catalog(db: string, log: string[]): MigrationStep[] {
  const deleteRange = (from: string, to: string) => run('ldb', [`--db=${db}`, 'deleterange', from, to]);
  const copies =
    (failFrom: number | undefined) =>
    async ({ offset, limit }: { offset: number; limit: number }) => {
      const batch = (await prefixed(db, 'user:')).slice(offset, offset + limit);
      if (failFrom !== undefined && offset >= failFrom) return { processed: 0, failed: batch.length };
      if (batch.length > 0) await ldbPut(db, Object.fromEntries(batch.map(([k, v]) => [`v2:${k}`, v])));
      log.push(`backfill batch at ${offset}: ${batch.length}`);
      return { processed: batch.length };
    };
  const undoCopies = async () => {
    await deleteRange('v2:', 'v2;');
    log.push('undo backfill');
  };
  const count = async () => ({
    users: (await prefixed(db, 'user:')).length,
    copies: (await prefixed(db, 'v2:user:')).length,
  });
  return [
    {
      name: '21-101-index',
      async apply() {
        const keys = await prefixed(db, 'user:');
        await ldbPut(db, Object.fromEntries(keys.map(([k]) => [`idx:${k}`, '1'])));
        log.push('apply index');
        return { keys: keys.length };
      },
      async undo({ record }) {
        await deleteRange('idx:', 'idx;');
        log.push(`undo index (${JSON.stringify(record)})`);
      },
    },
    backfill({ name: '21-102-backfill', batchSize: 4, batch: copies(undefined), undo: undoCopies }),
    backfill({ name: '21-102-backfill-flaky', batchSize: 4, batch: copies(4), undo: undoCopies }),
    validateCounts({
      name: '21-102-validate',
      counts: count,
      expected: () => ({ users: USERS, copies: USERS }),
    }),
    validateCounts({
      name: '21-102-validate-strict',
      counts: count,
      expected: () => ({ copies: USERS + 1 }),
    }),
  ];
}

async function setup(faults: Record<string, Record<string, string>> = {}, first = true) {
  const data = await dirs.make('migrations');
  const db = join(data, 'rocksdb');
  await makeDatabase(db, users);
  const log: string[] = [];
  const env = await releaseEnv({ engine: { migrations: catalog(db, log) }, replicas: 1, faults });
  cleanups.push(() => env.cleanup());
  const original = await scanDatabase(db);
  if (first) {
    const r = await env.engine.release({ version: 'v1' });
    expect(r.status, r.reason).toBe('succeeded');
  }
  return { db, log, env, original };
}

describe('migration steps with undo', () => {
  it('applies the steps in order before the deploy, and an emergency rollback undoes them newest first', async () => {
    const { db, log, env, original } = await setup();
    const result = await env.engine.release({
      version: 'v2',
      migrations: ['21-101-index', '21-102-backfill', '21-102-validate'],
    });
    expect(result).toMatchObject({ status: 'succeeded', serving: 'v2' });
    expect(log).toEqual([
      'apply index',
      'backfill batch at 0: 4',
      'backfill batch at 4: 4',
      'backfill batch at 8: 2',
    ]);
    expect((await prefixed(db, 'v2:user:')).length).toBe(USERS);
    const recorded = (await env.engine.history()).at(-1)?.migration as MigrationStepsRecord;
    expect(recorded).toEqual({
      version: 'v2',
      steps: [
        { name: '21-101-index', record: { keys: USERS } },
        { name: '21-102-backfill', record: { batches: 3, processed: USERS, failed: 0, batchSize: 4 } },
        { name: '21-102-validate', record: { observed: { users: USERS, copies: USERS } } },
      ],
    });
    // The migrate phase ran between backup and deploy.
    const phases = env.events.filter((e) => e.type === 'phase.started' && e.runId === result.runId);
    expect(phases.map((e) => (e as { phase: string }).phase)).toEqual([
      'preflight',
      'backup',
      'migrate',
      'deploy',
      'verify',
    ]);

    const back = await env.engine.rollback({ to: 'v1', reason: 'v2 corrupts search', confirm: 'CONFIRM' });
    expect(back).toMatchObject({ status: 'succeeded', serving: 'v1' });
    expect(back.incident?.actions).toContain('database rollback of 1 migration(s)');
    expect(log.slice(4)).toEqual(['undo backfill', `undo index (${JSON.stringify({ keys: USERS })})`]);
    expect(await scanDatabase(db)).toBe(original);
    const manifest = await env.engine.manifest(back.runId);
    expect(manifest.steps.map((s) => s.key)).toEqual(
      expect.arrayContaining(['database-rollback/0/2', 'database-rollback/0/1', 'database-rollback/0/0']),
    );
  });

  it('a failing validation undoes the backfill and the index, newest first, and the old version keeps serving', async () => {
    const { db, log, env, original } = await setup();
    const result = await env.engine.release({
      version: 'v2',
      migrations: ['21-101-index', '21-102-backfill', '21-102-validate-strict'],
    });
    expect(result).toMatchObject({ status: 'rolled-back', serving: 'v1' });
    expect(result.error?.code).toBe('CG_MIGRATION_FAILED');
    expect(result.error?.message).toContain(`copies ${USERS} (expected ${USERS + 1})`);
    expect(log.slice(-2)).toEqual(['undo backfill', `undo index (${JSON.stringify({ keys: USERS })})`]);
    expect(await scanDatabase(db)).toBe(original);
    expect(await env.serving()).toBe('v1');
    const manifest = await env.engine.manifest(result.runId);
    expect(manifest.migrations).toEqual([
      expect.objectContaining({ name: '21-101-index', status: 'undone' }),
      expect.objectContaining({ name: '21-102-backfill', status: 'undone' }),
      expect.objectContaining({ name: '21-102-validate-strict', status: 'undone' }),
    ]);
    const keys = manifest.steps.map((s) => s.key).filter((k) => k.startsWith('migrate'));
    expect(keys).toEqual([
      'migrate/0',
      'migrate/1',
      'migrate/2',
      'migrate-undo/2',
      'migrate-undo/1',
      'migrate-undo/0',
    ]);
    // Nothing was deployed, and the history keeps no migration record for the rolled-back release.
    expect(manifest.steps.some((s) => s.key.startsWith('deploy/'))).toBe(false);
    expect((await env.engine.history()).at(-1)).toMatchObject({ version: 'v2', status: 'rolled-back' });
    expect((await env.engine.history()).at(-1)?.migration).toBeUndefined();
  });

  it('a backfill stops at the first failing batch (stop-on-error); its first batch and the index are undone', async () => {
    const { db, log, env, original } = await setup();
    const result = await env.engine.release({
      version: 'v2',
      migrations: ['21-101-index', '21-102-backfill-flaky'],
    });
    expect(result).toMatchObject({ status: 'rolled-back', serving: 'v1' });
    expect(result.error).toMatchObject({ code: 'CG_MIGRATION_FAILED', details: { offset: 4, batchSize: 4 } });
    expect(log).toEqual([
      'apply index',
      'backfill batch at 0: 4',
      'undo backfill',
      `undo index (${JSON.stringify({ keys: USERS })})`,
    ]);
    expect(await scanDatabase(db)).toBe(original);
  });

  it('a deploy that fails after the migrations puts the old version back first, then undoes the steps', async () => {
    const { db, env, original } = await setup({ v2: { FAULT_ERROR_RATE: '1' } });
    const result = await env.engine.release({
      version: 'v2',
      migrations: ['21-101-index', '21-102-backfill'],
    });
    expect(result).toMatchObject({ status: 'rolled-back', serving: 'v1' });
    expect(result.error?.code).toBe('CG_ANALYSIS_FAILED');
    const phases = env.events
      .filter((e) => e.type === 'phase.started' && e.runId === result.runId)
      .map((e) => (e as { phase: string }).phase);
    expect(phases.slice(phases.indexOf('undo'))).toEqual(['undo', 'verify', 'migrate']);
    expect(await scanDatabase(db)).toBe(original);
  });

  it('a first release that fails after its migrations stops the new pool and undoes the steps', async () => {
    const { db, log, env, original } = await setup({ v1: { FAULT_ERROR_RATE: '1' } }, false);
    const result = await env.engine.release({
      version: 'v1',
      migrations: ['21-101-index', '21-102-backfill'],
    });
    expect(result).toMatchObject({ status: 'failed', serving: undefined });
    expect(log.slice(-2)).toEqual(['undo backfill', `undo index (${JSON.stringify({ keys: USERS })})`]);
    expect(await scanDatabase(db)).toBe(original);
    expect((await env.target.describe()).pools).toEqual([]);
  });

  it('refuses a step the catalog does not have before anything is written', async () => {
    const { env } = await setup();
    const runs = (await env.engine.status()).lastRun;
    await expect(
      env.engine.release({ version: 'v2', migrations: ['21-101-index', '99-unknown'] }),
    ).rejects.toMatchObject({
      code: 'CG_CONFIG_INVALID',
    });
    await expect(
      env.engine.release({ version: 'v2', migrations: ['21-101-index'], migration: { legacy: true } }),
    ).rejects.toMatchObject({ code: 'CG_CONFIG_INVALID' });
    expect((await env.engine.status()).lastRun).toEqual(runs);
  });
});
