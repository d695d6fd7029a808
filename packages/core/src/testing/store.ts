import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { ReleaseError } from '../errors.js';
import type { HistoryEntry, LockOwner, RunHeader, Store } from '../store/types.js';
import { type ChildHolder, lockWithin, startHolder } from './store-child.js';
import { controlTests } from './store-control.js';

/** What {@link testStore}'s `create` gives for one test: a store over fresh, empty state. */
export interface StoreFixture {
  store: Store;
  /**
   * Environment variables with which `childModule` opens the same state from another process (a
   * directory, a database URL and schema).
   */
  childEnv: Record<string, string>;
  /** Removes the state (temp dirs, schemas). Runs even when a test fails. */
  cleanup?(): Promise<void>;
}

/** Options of {@link testStore}. */
export interface StoreSuiteOptions {
  /** Shown in the describe block. @default 'Store' */
  name?: string;
  /** Makes a fresh fixture; called once per test. */
  create(): StoreFixture | Promise<StoreFixture>;
  /**
   * URL of an ES module the suite imports in other processes (and in this one, for a second
   * instance): its default export (or `openStore`) takes the environment variables `childEnv` and
   * returns the store over the same state, with the same lease timings.
   */
  childModule: string;
  /** The lease's time to live the stores are created with: a dead holder is taken over within it (+1 s). */
  staleAfterMs: number;
  /** Time limit of each test, in milliseconds. @default 60000 */
  timeoutMs?: number;
}

/** Runs `promise` and returns the `code` of the {@link ReleaseError} it rejects with. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ReleaseError) return err.code;
    throw err;
  }
  throw new Error('expected the call to fail with a ReleaseError');
}

const owner = (runId: string): LockOwner => ({
  runId,
  pid: process.pid,
  host: hostname(),
  since: new Date().toISOString(),
});

/** A run header for the suite's journals. */
export const suiteHeader = (runId: string, environment: string, startedAt: string): RunHeader => ({
  runId,
  kind: 'release',
  environment,
  version: 'v1',
  startedAt,
  strategy: 'rolling',
  target: 'suite',
});

const historyEntry = (runId: string, version: string): HistoryEntry => ({
  runId,
  kind: 'release',
  version,
  status: 'succeeded',
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:01:00.000Z',
  serving: version,
  verdicts: {},
});

/**
 * The conformance suite every {@link Store} passes: one lease holder per environment with a token that
 * grows on every takeover, takeover of a killed or paused holder within the lease's time to live, stale
 * tokens refused on every write, journals in order, history and runs per environment, and control
 * requests delivered exactly once, in order, validated, withdrawn or answered within their bounds.
 * Holders run in real child processes (started with `childModule`), so "killed" and "paused" are real.
 *
 * @example
 * ```ts
 * import { testStore } from '@codegraph/release-core/testing'
 *
 * testStore({
 *   name: 'postgres store',
 *   staleAfterMs: 2000,
 *   childModule: new URL('./fixtures/open-store.mjs', import.meta.url).href,
 *   async create() {
 *     const schema = await freshSchema()
 *     return { store: postgresStore({ url, schema, leaseMs: 2000 }), childEnv: { PG_URL: url, PG_SCHEMA: schema }, cleanup: () => dropSchema(schema) }
 *   },
 * })
 * ```
 */
export function testStore(options: StoreSuiteOptions): void {
  const timeout = options.timeoutMs ?? 60_000;
  const ttl = options.staleAfterMs;
  const cleanups: Array<() => Promise<void> | void> = [];
  const holders: ChildHolder[] = [];
  afterEach(async () => {
    await Promise.allSettled(holders.splice(0).map((h) => h.kill()));
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const fresh = async () => {
    const f = await options.create();
    cleanups.push(async () => {
      await f.store.close?.();
      await f.cleanup?.();
    });
    return f;
  };
  const second = async (f: StoreFixture): Promise<Store> => {
    const mod = (await import(options.childModule)) as {
      default?: (env: Record<string, string>) => Store | Promise<Store>;
      openStore?: (env: Record<string, string>) => Store | Promise<Store>;
    };
    const open = mod.openStore ?? mod.default;
    if (!open) throw new Error(`${options.childModule} exports no store factory (default or openStore)`);
    const store = await open({ ...f.childEnv });
    cleanups.push(() => store.close?.());
    return store;
  };
  const holder = (f: StoreFixture, environment: string, runId: string) => {
    const h = startHolder(options.childModule, f.childEnv, environment, runId);
    holders.push(h);
    return h;
  };

  describe(`${options.name ?? 'Store'} conformance`, () => {
    it('gives an environment to one holder at a time, and every new holder a greater token', {
      timeout,
    }, async () => {
      const { store } = await fresh();
      const a = await store.lock('production', owner('run-a'));
      expect(await codeOf(store.lock('production', owner('run-b')))).toBe('CG_ENVIRONMENT_LOCKED');
      expect(await store.lockOwner('production')).toMatchObject({ runId: 'run-a', pid: process.pid });
      const other = await store.lock('staging', owner('run-s')); // environments are apart
      await a.release();
      await a.release(); // a no-op the second time
      expect(await store.lockOwner('production')).toBeUndefined();
      const b = await store.lock('production', owner('run-b'));
      expect(b.token).toBeGreaterThan(a.token);
      expect(b.lost.aborted).toBe(false);
      await b.release();
      await other.release();
    });

    it('takes the lease over from a killed holder process within its time to live, with a greater token', {
      timeout,
    }, async () => {
      const f = await fresh();
      const h = holder(f, 'production', 'run-killed');
      const token = Number((await h.waitFor(/TOKEN (\d+)/, 20_000))[1]);
      expect(await codeOf(f.store.lock('production', owner('run-next')))).toBe('CG_ENVIRONMENT_LOCKED');
      await h.kill('SIGKILL');
      const { lock, tookMs } = await lockWithin(f.store, 'production', 'run-next', ttl + 1_000);
      expect(tookMs).toBeLessThanOrEqual(ttl + 1_000);
      expect(lock.token).toBeGreaterThan(token);
      await lock.release();
    });

    it('refuses the late writes of a paused holder that lost its lease, and tells it so', {
      timeout,
    }, async () => {
      const f = await fresh();
      const h = holder(f, 'production', 'run-paused');
      const token = Number((await h.waitFor(/TOKEN (\d+)/, 20_000))[1]);
      await f.store.append(
        'run-paused',
        { type: 'run', header: suiteHeader('run-paused', 'production', new Date().toISOString()) },
        { environment: 'production', token },
      );
      h.child.kill('SIGSTOP');
      const { lock } = await lockWithin(f.store, 'production', 'run-taker', ttl + 3_000);
      expect(lock.token).toBeGreaterThan(token);
      h.child.kill('SIGCONT');
      h.send('append');
      expect((await h.waitFor(/APPEND-REFUSED (\S+)|APPENDED/, 10_000))[1]).toBe('CG_LOCK_LOST');
      expect((await h.waitFor(/LOST (\S+)/, ttl + 5_000))[1]).toBe('CG_LOCK_LOST');
      const entries = await f.store.read('run-paused');
      expect(entries.some((e) => e.type === 'note')).toBe(false);
      await lock.release();
    });

    it('gives the lease to exactly one of two racing processes, every time', {
      timeout: Math.max(timeout, 120_000),
    }, async () => {
      const f = await fresh();
      // Eight races, four at a time (each on its own environment), two processes in each.
      for (let batch = 0; batch < 2; batch++) {
        await Promise.all(
          [0, 1, 2, 3].map(async (i) => {
            const env = `race-${batch}-${i}`;
            const pair = [holder(f, env, `run-${env}-a`), holder(f, env, `run-${env}-b`)];
            const results = await Promise.all(pair.map((h) => h.waitFor(/TOKEN \d+|REFUSED \S+/, 30_000)));
            expect(results.map((m) => m[0].split(' ')[0]).sort()).toEqual(['REFUSED', 'TOKEN']);
            await Promise.all(pair.map((h) => h.kill()));
          }),
        );
      }
    });

    it('refuses a fenced append or history write with a stale token (CG_LOCK_LOST) and writes nothing', {
      timeout,
    }, async () => {
      const { store } = await fresh();
      const old = await store.lock('production', owner('run-old'));
      await store.append(
        'run-old',
        { type: 'run', header: suiteHeader('run-old', 'production', '2026-01-01T00:00:00.000Z') },
        { environment: 'production', token: old.token },
      );
      await old.release();
      const now = await store.lock('production', owner('run-now'));
      const stale = { environment: 'production', token: old.token };
      expect(await codeOf(store.append('run-old', { type: 'note', message: 'stale' }, stale))).toBe(
        'CG_LOCK_LOST',
      );
      expect(await codeOf(store.recordHistory('production', historyEntry('run-old', 'v9'), stale))).toBe(
        'CG_LOCK_LOST',
      );
      expect((await store.read('run-old')).map((e) => e.type)).toEqual(['run']);
      expect(await store.history('production')).toEqual([]);
      const fence = { environment: 'production', token: now.token };
      await store.append(
        'run-now',
        { type: 'run', header: suiteHeader('run-now', 'production', '2026-01-02T00:00:00.000Z') },
        fence,
      );
      await store.recordHistory('production', historyEntry('run-now', 'v2'), fence);
      expect(await store.history('production')).toEqual([historyEntry('run-now', 'v2')]);
      await now.release();
      expect(await codeOf(store.append('run-now', { type: 'note', message: 'after release' }, fence))).toBe(
        'CG_LOCK_LOST',
      );
    });

    it('numbers journal entries in order and reads them back whole from another instance', {
      timeout,
    }, async () => {
      const f = await fresh();
      const { store } = f;
      const header = suiteHeader('run-1', 'production', '2026-01-01T00:00:00.000Z');
      const first = await store.append('run-1', { type: 'run', header });
      expect(first).toMatchObject({ seq: 0, type: 'run', header });
      expect(typeof first.time).toBe('string');
      for (const message of ['a', 'b', 'c']) await store.append('run-1', { type: 'note', message });
      const other = await second(f);
      await other.append('run-1', { type: 'step-started', key: 'deploy/0', input: { weights: { v1: 100 } } });
      await store.append('run-1', { type: 'finished', status: 'succeeded', serving: 'v1' });
      const entries = await other.read('run-1');
      expect(entries.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(entries.map((e) => (e.type === 'note' ? e.message : e.type))).toEqual([
        'run',
        'a',
        'b',
        'c',
        'step-started',
        'finished',
      ]);
      expect(entries[4]).toMatchObject({ key: 'deploy/0', input: { weights: { v1: 100 } } });
      expect(await codeOf(store.read('run-unknown'))).toBe('CG_RUN_NOT_FOUND');
    });

    it('keeps history and runs per environment, newest run first, with its status', { timeout }, async () => {
      const { store } = await fresh();
      await store.append('run-a', {
        type: 'run',
        header: suiteHeader('run-a', 'production', '2026-01-01T00:00:00.000Z'),
      });
      await store.append('run-a', { type: 'finished', status: 'succeeded' });
      await store.append('run-b', {
        type: 'run',
        header: suiteHeader('run-b', 'production', '2026-01-02T00:00:00.000Z'),
      });
      await store.append('run-c', {
        type: 'run',
        header: suiteHeader('run-c', 'staging', '2026-01-03T00:00:00.000Z'),
      });
      expect((await store.runs('production')).map((r) => [r.runId, r.environment, r.status])).toEqual([
        ['run-b', 'production', undefined],
        ['run-a', 'production', 'succeeded'],
      ]);
      expect((await store.runs()).map((r) => r.runId)).toEqual(['run-c', 'run-b', 'run-a']);
      expect(await store.runs('empty')).toEqual([]);
      await store.recordHistory('production', historyEntry('run-a', 'v1'));
      await store.recordHistory('production', historyEntry('run-b', 'v2'));
      expect((await store.history('production')).map((h) => h.version)).toEqual(['v1', 'v2']);
      expect(await store.history('staging')).toEqual([]);
    });

    controlTests({ fresh, second, timeout });
  });
}
