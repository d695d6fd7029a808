import type { JournalEntry } from '@codegraph/release-core';
import { postgresStore } from '@codegraph/store-postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killChildren, startChild } from './helpers/children.js';
import { startPostgres, type TestPostgres } from './helpers/postgres.js';

// A lease holder in another process dies (SIGKILL) or freezes (SIGSTOP): another process takes the
// environment over once the lease expires, and the frozen one's late writes are refused by the token.
const leaseMs = 1_500;
let server: TestPostgres;
let url: string;
const closers: Array<() => Promise<void>> = [];
beforeAll(async () => {
  server = await startPostgres();
  url = await server.createDatabase('takeover');
});
afterEach(async () => {
  killChildren();
  for (const close of closers.splice(0)) await close();
});
afterAll(async () => {
  await server?.destroy();
});

function store() {
  const s = postgresStore({ connectionString: url, schema: 'takeover', leaseMs });
  closers.push(() => s.close());
  return s;
}
const owner = (runId: string) => ({
  runId,
  pid: process.pid,
  host: 'host-b',
  since: new Date().toISOString(),
});

function holder(environment: string, runId: string) {
  return startChild('lease-child.mjs', {
    CG_PG_URL: url,
    CG_PG_SCHEMA: 'takeover',
    CG_LEASE_MS: String(leaseMs),
    CG_ENVIRONMENT: environment,
    CG_RUN_ID: runId,
  });
}

/** Tries to take the lease every 25 ms; returns the lock and how long it took. */
async function takeOver(s: ReturnType<typeof store>, environment: string, runId: string) {
  const started = performance.now();
  for (;;) {
    try {
      const lock = await s.lock(environment, owner(runId));
      return { lock, ms: performance.now() - started };
    } catch (err) {
      if ((err as { code?: string }).code !== 'CG_ENVIRONMENT_LOCKED') throw err;
      if (performance.now() - started > leaseMs * 4) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

describe('a lease holder that dies or freezes', () => {
  it('after SIGKILL of the holder, another process takes over within the lease length + 1 s', async () => {
    const s = store();
    const child = holder('killed', 'run-a');
    const locked = await child.next((l) => l.event === 'locked');
    await child.next((l) => l.event === 'wrote' && Number(l.i) >= 5);
    await expect(s.lock('killed', owner('run-b'))).rejects.toMatchObject({ code: 'CG_ENVIRONMENT_LOCKED' });
    child.proc.kill('SIGKILL');
    const { lock, ms } = await takeOver(s, 'killed', 'run-b');
    expect(ms).toBeLessThanOrEqual(leaseMs + 1_000);
    expect(lock.token).toBe(Number(locked.token) + 1);
    await lock.release();
  });

  it('a holder frozen past its lease (SIGSTOP) writes nothing after SIGCONT: the token refuses it, and it learns it lost the lease', async () => {
    const s = store();
    const child = holder('frozen', 'run-a');
    const locked = await child.next((l) => l.event === 'locked');
    await child.next((l) => l.event === 'wrote' && Number(l.i) >= 3);
    child.proc.kill('SIGSTOP');
    const { lock } = await takeOver(s, 'frozen', 'run-b');
    expect(lock.token).toBe(Number(locked.token) + 1);
    const fence = { environment: 'frozen', token: lock.token };
    const mine = await s.append('run-a', { type: 'note', message: 'the new holder writes' }, fence);
    child.proc.kill('SIGCONT');
    const refused = await child.next((l) => l.event === 'refused');
    expect(refused).toMatchObject({ code: 'CG_LOCK_LOST', lost: true, lostCode: 'CG_LOCK_LOST' });
    await child.exited;
    // Every write of the frozen holder is older than the takeover; none landed after it.
    const journal = await s.read('run-a');
    const holderWrites = journal.filter(
      (e): e is Extract<JournalEntry, { type: 'note' }> =>
        e.type === 'note' && e.message.startsWith('holder write'),
    );
    expect(holderWrites.length).toBeGreaterThanOrEqual(4);
    expect(holderWrites.every((e) => e.seq < mine.seq)).toBe(true);
    expect(journal.at(-1)).toMatchObject({ seq: mine.seq, message: 'the new holder writes' });
    await lock.release();
  });
});
