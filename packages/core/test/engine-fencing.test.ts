import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileStore, type JournalEntry } from '../src/index.js';
import { leaseStore, recordingTarget } from './helpers/lease-store.js';
import { releaseEnv } from './helpers/release-env.js';

type Env = Awaited<ReturnType<typeof releaseEnv>>;
let env: Env | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

/** An environment whose engines share one lease store around a real file store. */
async function fencedEnv() {
  env = await releaseEnv();
  const files = fileStore({ dir: join(env.dir, 'store') });
  const { store, control } = leaseStore(files);
  const { target, changes } = recordingTarget(env.target);
  const make = () => env!.make({ store, target });
  return { env, files, store, control, changes, make };
}

const lastRun = (events: Env['events']) => events.findLast((e) => e.type === 'run.started')?.runId ?? '';

describe('fencing: a run that lost its lease or its store stops acting', () => {
  it('a run whose lease is lost stops acting on the target at its next step, and the new holder resumes it', async () => {
    const f = await fencedEnv();
    const engine = f.make();
    await engine.release({ version: 'v1' });
    let changesAtLoss = -1;
    let shifts = 0;
    engine.on('traffic.shifted', () => {
      if (++shifts === 1 && f.env.events.some((e) => e.type === 'run.started' && e.version === 'v2')) {
        changesAtLoss = f.changes.length;
        f.control.loseLease('staging');
      }
    });
    shifts = 0;
    await expect(engine.release({ version: 'v2' })).rejects.toMatchObject({ code: 'CG_LOCK_LOST' });
    expect(changesAtLoss).toBeGreaterThan(0);
    // Not one target call after the lease was lost: not even an undo.
    expect(f.changes.length).toBe(changesAtLoss);
    const runId = lastRun(f.env.events);
    const journal = await f.files.read(runId);
    expect(journal.some((e) => e.type === 'finished')).toBe(false);
    expect(f.env.events.some((e) => e.type === 'run.finished' && e.runId === runId)).toBe(false);
    // Whoever holds the lease now finishes the run from its journal.
    const result = await f.make().resume(runId);
    expect(result).toMatchObject({ status: 'succeeded', serving: 'v2' });
    expect(await f.env.serving()).toBe('v2');
  });

  it('a write with a stale lease token changes nothing and the run stops', async () => {
    const f = await fencedEnv();
    const engine = f.make();
    await engine.release({ version: 'v1' });
    let lengthAtTakeover = -1;
    let changesAtRefusal = -1;
    engine.on('action.started', async (e) => {
      if (e.action.type === 'analyze' && e.index > 0 && lengthAtTakeover < 0) {
        // Another process takes the lease over while this one is paused; it is not told.
        f.control.takeOver('staging');
        lengthAtTakeover = (await f.files.read(e.runId)).length;
      }
    });
    const refusedOnce = new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (f.control.refused.length > 0) {
          changesAtRefusal = f.changes.length;
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    const release = engine.release({ version: 'v2' });
    await expect(release).rejects.toMatchObject({ code: 'CG_LOCK_LOST' });
    await refusedOnce;
    const runId = lastRun(f.env.events);
    const journal: JournalEntry[] = await f.files.read(runId);
    // The refused write and everything after it left no trace in the journal.
    expect(journal.length).toBe(lengthAtTakeover);
    expect(f.control.refused).toHaveLength(1);
    expect(f.changes.length).toBe(changesAtRefusal);
    expect((await f.files.history('staging')).map((h) => h.version)).toEqual(['v1']);
  });

  it('a store that goes away stops the run at its next step, and resume finishes it once the store is back', async () => {
    const f = await fencedEnv();
    const engine = f.make();
    await engine.release({ version: 'v1' });
    let changesAtOutage = -1;
    let shifts = 0;
    engine.on('traffic.shifted', () => {
      if (++shifts === 2) {
        changesAtOutage = f.changes.length;
        f.control.down = true;
      }
    });
    shifts = 0;
    await expect(engine.release({ version: 'v2' })).rejects.toMatchObject({ code: 'CG_STORE_UNAVAILABLE' });
    expect(f.changes.length).toBe(changesAtOutage);
    const runId = lastRun(f.env.events);
    const journal = await f.files.read(runId);
    // The step in flight when the store went away is journaled as started, never as done: resume runs it again.
    const started = journal
      .filter((e) => e.type === 'step-started')
      .map((e) => e.type === 'step-started' && e.key);
    const ended = journal
      .filter((e) => e.type === 'step-finished' || e.type === 'step-failed')
      .map((e) => (e.type === 'step-finished' || e.type === 'step-failed') && e.key);
    expect(started.filter((k) => !ended.includes(k))).toHaveLength(1);
    expect(journal.some((e) => e.type === 'finished')).toBe(false);

    // While the store is down nothing else can run either; once it is back, resume completes the release.
    f.control.down = false;
    await expect(engine.release({ version: 'v3' })).rejects.toMatchObject({ code: 'CG_RUN_INTERRUPTED' });
    const result = await engine.resume(runId);
    expect(result).toMatchObject({ status: 'succeeded', serving: 'v2', from: 'v1' });
    expect((await f.env.target.describe()).pools.map((p) => [p.name, p.weight])).toEqual([['v2', 100]]);
    expect((await f.files.history('staging')).map((h) => h.version)).toEqual(['v1', 'v2']);
  });

  it('a journal write that fails on a full disk stops the run with a typed error before any further target call', async () => {
    const f = await fencedEnv();
    const engine = f.make();
    await engine.release({ version: 'v1' });
    let changesAtFull = -1;
    engine.on('action.finished', (e) => {
      if (e.action.type === 'provision' && changesAtFull < 0) {
        changesAtFull = f.changes.length;
        f.control.diskFull = true;
      }
    });
    const failure = engine.release({ version: 'v2' });
    await expect(failure).rejects.toMatchObject({ code: 'CG_STORE_FAILED' });
    await expect(failure).rejects.toThrow(/no space left on device/);
    expect(f.changes.length).toBe(changesAtFull);
    f.control.diskFull = false;
    const result = await engine.resume(lastRun(f.env.events));
    expect(result).toMatchObject({ status: 'succeeded', serving: 'v2' });
  });
});
