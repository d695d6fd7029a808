import { hostname } from 'node:os';
import type { HistoryEntry, LockOwner } from '@codegraph/release-core';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useSchemas } from './helpers/schemas.js';

// The Store contract (leases, journal, history, runs) on a real PostgreSQL server: one server for the
// file, one schema per test. Control requests: control-requests.test.ts.
const { fresh, sql, url } = useSchemas('contract');

const owner = (runId: string, host = hostname()): LockOwner => ({
  runId,
  pid: process.pid,
  host,
  since: new Date().toISOString(),
});
const header = (runId: string, environment = 'staging', version = 'v2') => ({
  type: 'run' as const,
  header: {
    runId,
    kind: 'release' as const,
    environment,
    version,
    startedAt: new Date().toISOString(),
    strategy: 'rolling',
    target: 'recording',
  },
});
const history = (runId: string, version: string): HistoryEntry => ({
  runId,
  kind: 'release',
  version,
  status: 'succeeded',
  startedAt: new Date().toISOString(),
  finishedAt: new Date().toISOString(),
  verdicts: {},
});

describe('leases', () => {
  it('the lease has one holder; a second taker is refused with the holder named', async () => {
    const { store, make } = fresh();
    const lock = await store.lock('staging', owner('run-a'));
    expect(lock.token).toBeGreaterThan(0);
    expect(lock.lost.aborted).toBe(false);
    const other = make();
    await expect(other.lock('staging', owner('run-b', 'host-b'))).rejects.toMatchObject({
      code: 'CG_ENVIRONMENT_LOCKED',
      details: { owner: { runId: 'run-a' } },
    });
    expect(await other.lockOwner('staging')).toMatchObject({ runId: 'run-a', pid: process.pid });
    await lock.release();
    expect(await other.lockOwner('staging')).toBeUndefined();
    const next = await other.lock('staging', owner('run-b', 'host-b'));
    expect(next.token).toBeGreaterThan(lock.token);
    await next.release();
    await lock.release(); // a no-op once released
  });

  it('a lease its holder stopped refreshing is taken over once expired, with a greater token', async () => {
    const { schema, store } = fresh({ leaseMs: 600 });
    await store.runs(); // the schema is made on first use
    // A holder on another host that died: its row says 600 ms are left, and nobody will refresh it.
    await sql(
      `INSERT INTO "${schema}".leases (environment, token, run_id, pid, host, since, expires_at, refreshed_at)
       VALUES ('staging', 41, 'run-dead', 1, 'host-dead', '2026-01-01T00:00:00.000Z', clock_timestamp() + interval '600 ms', clock_timestamp())`,
    );
    await expect(store.lock('staging', owner('run-b'))).rejects.toMatchObject({
      code: 'CG_ENVIRONMENT_LOCKED',
      details: { owner: { runId: 'run-dead', host: 'host-dead' } },
    });
    await new Promise((r) => setTimeout(r, 650));
    const lock = await store.lock('staging', owner('run-b'));
    expect(lock.token).toBe(42);
    await expect(
      store.append('run-dead', { type: 'note', message: 'late' }, { environment: 'staging', token: 41 }),
    ).rejects.toMatchObject({ code: 'CG_LOCK_LOST' });
    await lock.release();
  });

  it('a refreshed lease outlives its length, and its holder keeps writing', async () => {
    const { store, make } = fresh({ leaseMs: 600, refreshEveryMs: 150 });
    const lock = await store.lock('staging', owner('run-a'));
    const fence = { environment: 'staging', token: lock.token };
    await store.append('run-a', header('run-a'), fence);
    await new Promise((r) => setTimeout(r, 1_500));
    await expect(make().lock('staging', owner('run-b'))).rejects.toMatchObject({
      code: 'CG_ENVIRONMENT_LOCKED',
    });
    expect((await store.append('run-a', { type: 'note', message: 'still mine' }, fence)).seq).toBe(1);
    expect(lock.lost.aborted).toBe(false);
    await lock.release();
  });

  it('a stale fence writes nothing: no journal line, no history line, no run row', async () => {
    const { store } = fresh();
    const old = await store.lock('staging', owner('run-a'));
    await old.release();
    const now = await store.lock('staging', owner('run-b'));
    const stale = { environment: 'staging', token: old.token };
    await expect(store.append('run-x', header('run-x'), stale)).rejects.toMatchObject({
      code: 'CG_LOCK_LOST',
    });
    await expect(store.recordHistory('staging', history('run-x', 'v9'), stale)).rejects.toMatchObject({
      code: 'CG_LOCK_LOST',
    });
    await expect(store.read('run-x')).rejects.toMatchObject({ code: 'CG_RUN_NOT_FOUND' });
    expect(await store.history('staging')).toEqual([]);
    expect(await store.runs('staging')).toEqual([]);
    // The current token writes.
    await store.append('run-b', header('run-b'), { environment: 'staging', token: now.token });
    await store.recordHistory('staging', history('run-b', 'v2'), {
      environment: 'staging',
      token: now.token,
    });
    expect((await store.history('staging')).map((h) => h.version)).toEqual(['v2']);
    await now.release();
  });

  it('fenced appends racing the expiry and the takeover land before the new holder’s first write, or not at all', async () => {
    const { schema, store, make } = fresh({ leaseMs: 60_000 });
    await store.append('run-a', header('run-a'));
    // A holder that stopped refreshing: its lease ends 300 ms from now, while it keeps writing.
    await sql(
      `INSERT INTO "${schema}".leases (environment, token, run_id, pid, host, since, expires_at, refreshed_at)
       VALUES ('staging', 7, 'run-a', 1, 'host-a', '2026-01-01T00:00:00.000Z', clock_timestamp() + interval '300 ms', clock_timestamp())`,
    );
    const old = { environment: 'staging', token: 7 };
    const written: number[] = [];
    let refusedWith: unknown;
    const writer = (async () => {
      for (;;) {
        try {
          written.push((await store.append('run-a', { type: 'note', message: 'old holder' }, old)).seq);
        } catch (err) {
          refusedWith = err;
          return;
        }
      }
    })();
    const taker = make();
    let lock: Awaited<ReturnType<typeof taker.lock>> | undefined;
    while (!lock) {
      lock = await taker.lock('staging', owner('run-b')).catch(() => undefined);
    }
    const first = await taker.append(
      'run-a',
      { type: 'note', message: 'new holder' },
      { environment: 'staging', token: lock.token },
    );
    await writer;
    expect(refusedWith).toMatchObject({ code: 'CG_LOCK_LOST' });
    expect(written.length).toBeGreaterThan(0);
    expect(Math.max(...written)).toBeLessThan(first.seq);
    const notes = (await store.read('run-a')).filter((e) => e.type === 'note');
    expect(notes.at(-1)).toMatchObject({ seq: first.seq, message: 'new holder' });
    await lock.release();
  });

  it('a holder whose fenced write is refused has its lost signal fired at once', async () => {
    const { schema, store } = fresh({ leaseMs: 60_000 });
    const lock = await store.lock('staging', owner('run-a'));
    // Someone (an operator, another host after expiry) moves the token on behind this holder's back.
    await sql(`UPDATE "${schema}".leases SET token = token + 1 WHERE environment = 'staging'`);
    await expect(
      store.append('run-a', { type: 'note', message: 'x' }, { environment: 'staging', token: lock.token }),
    ).rejects.toMatchObject({ code: 'CG_LOCK_LOST' });
    expect(lock.lost.aborted).toBe(true);
    expect(lock.lost.reason).toMatchObject({ code: 'CG_LOCK_LOST' });
  });
});

describe('journal, history and runs', () => {
  it('numbers a run’s entries in order with no gaps, even when appends race', async () => {
    const { store, make } = fresh();
    const other = make();
    await store.append('run-1', header('run-1'));
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        (i % 2 ? store : other).append('run-1', { type: 'note', message: `n${i}`, data: { i } }),
      ),
    );
    const entries = await store.read('run-1');
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 61 }, (_, i) => i));
    expect(entries[0]).toMatchObject({ type: 'run', header: { runId: 'run-1' } });
    const times = entries.map((e) => Date.parse(e.time));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('keeps what was appended exactly, and returns it with its number and time', async () => {
    const { store } = fresh();
    const input = {
      type: 'step-finished' as const,
      key: 'deploy/0',
      result: { weights: { v1: 90, v2: 10 }, text: 'é\u0000"' },
    };
    await store.append('run-1', header('run-1'));
    const written = await store.append('run-1', input);
    expect(written).toMatchObject({ ...input, seq: 1 });
    expect((await store.read('run-1'))[1]).toEqual(written);
  });

  it('lists runs newest first with their status once finished, per environment', async () => {
    const { store } = fresh();
    await store.append('run-1', {
      ...header('run-1'),
      header: { ...header('run-1').header, startedAt: '2026-01-01T00:00:00.000Z' },
    });
    await store.append('run-2', {
      ...header('run-2'),
      header: { ...header('run-2').header, startedAt: '2026-01-02T00:00:00.000Z' },
    });
    await store.append('run-3', header('run-3', 'production'));
    await store.append('run-1', { type: 'finished', status: 'succeeded', serving: 'v2' });
    expect(await store.runs('staging')).toEqual([
      {
        runId: 'run-2',
        environment: 'staging',
        kind: 'release',
        version: 'v2',
        startedAt: '2026-01-02T00:00:00.000Z',
        status: undefined,
      },
      {
        runId: 'run-1',
        environment: 'staging',
        kind: 'release',
        version: 'v2',
        startedAt: '2026-01-01T00:00:00.000Z',
        status: 'succeeded',
      },
    ]);
    expect((await store.runs()).map((r) => r.runId).sort()).toEqual(['run-1', 'run-2', 'run-3']);
  });

  it('keeps history per environment, oldest first', async () => {
    const { store } = fresh();
    await store.recordHistory('staging', history('run-1', 'v1'));
    await store.recordHistory('production', history('run-2', 'v7'));
    await store.recordHistory('staging', history('run-3', 'v2'));
    expect((await store.history('staging')).map((h) => h.version)).toEqual(['v1', 'v2']);
    expect(await store.history('nowhere')).toEqual([]);
  });

  it('reads made at once by many runs, coalesced into few statements, each get exactly their own rows', async () => {
    // A pool that counts the statements sent through it.
    const pool = new pg.Pool({ connectionString: url(), max: 4 });
    let statements = 0;
    const query = pool.query.bind(pool) as (...a: unknown[]) => unknown;
    (pool as unknown as { query: (...a: unknown[]) => unknown }).query = (...a: unknown[]) => {
      statements++;
      return query(...a);
    };
    const { store } = fresh({ pool });
    const envs = Array.from({ length: 300 }, (_, i) => `env-${i}`);
    // Environment i has i % 4 history entries and i % 3 runs; a few share a name to read twice.
    for (const [i, env] of envs.entries()) {
      for (let h = 0; h < i % 4; h++) await store.recordHistory(env, history(`run-${i}-h${h}`, `v${h}`));
      for (let r = 0; r < i % 3; r++) await store.append(`run-${i}-r${r}`, header(`run-${i}-r${r}`, env));
    }
    const asked = [...envs, 'env-7', 'env-7', 'nowhere'];
    const before = statements;
    const [histories, runs] = await Promise.all([
      Promise.all(asked.map((env) => store.history(env))),
      Promise.all(asked.map((env) => store.runs(env))),
    ]);
    for (const [j, env] of asked.entries()) {
      const i = env === 'nowhere' ? 0 : Number(env.slice(4));
      expect(histories[j]!.map((h) => h.runId)).toEqual(
        Array.from({ length: i % 4 }, (_, h) => `run-${i}-h${h}`),
      );
      expect(runs[j]!.map((r) => r.runId).sort()).toEqual(
        Array.from({ length: i % 3 }, (_, r) => `run-${i}-r${r}`),
      );
      expect(runs[j]!.every((r) => r.environment === env)).toBe(true);
    }
    // Coalesced: 606 reads reached the server as a handful of statements, not one each.
    expect(statements - before).toBeLessThanOrEqual(12);
    await store.close();
    await pool.end();
  });

  it('refuses a journal row that is not what the store wrote', async () => {
    const { schema, store } = fresh();
    await store.append('run-1', header('run-1'));
    await sql(
      `INSERT INTO "${schema}".journal (run_id, seq, type, at, entry) VALUES ('run-1', 1, 'note', now(), '{"type":"finished"}')`,
    );
    await expect(store.read('run-1')).rejects.toMatchObject({ code: 'CG_STORE_FAILED' });
  });
});
