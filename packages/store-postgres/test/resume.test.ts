import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresStore } from '@codegraph/store-postgres';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readCalls, readPools } from './fixtures/recording-target.mjs';
import { type Child, killChildren, startChild } from './helpers/children.js';
import { startPostgres, type TestPostgres } from './helpers/postgres.js';

// A release killed at each journal point, or cut off from its database, is finished from another
// process on "another host" (another host name), and the target ends consistent: one pool, all traffic.
const leaseMs = 1_000;
let server: TestPostgres;
let url: string;
let dir: string;
let store: ReturnType<typeof postgresStore>;
beforeAll(async () => {
  server = await startPostgres();
  url = await server.createDatabase('resume');
  dir = await fs.mkdtemp(join(tmpdir(), 'cg-pg-resume-'));
  store = postgresStore({ connectionString: url, schema: 'resume', leaseMs });
});
afterEach(() => killChildren());
afterAll(async () => {
  killChildren();
  await store?.close();
  await server?.destroy();
  await fs.rm(dir, { recursive: true, force: true });
});

const engineChild = (host: string) =>
  startChild('engine-child.mjs', {
    CG_PG_URL: url,
    CG_PG_SCHEMA: 'resume',
    CG_LEASE_MS: String(leaseMs),
    CG_TARGET_DIR: dir,
    CG_HOST: host,
  });

/** Releases v1 to completion in a host-a process: the starting point of every case. */
async function releasedV1(environment: string) {
  const a = engineChild('host-a');
  a.send({ cmd: 'release', id: 'v1', environment, version: 'v1' });
  expect(await a.next((l) => l.id === 'v1' && l.event === 'result')).toMatchObject({ status: 'succeeded' });
  return a;
}

/** Resumes a run in a host-b process (one process resumes many runs, one per environment). */
async function resumeOnHostB(b: Child, environment: string, runId: string) {
  const id = `resume-${environment}`;
  b.send({ cmd: 'resume', id, environment, runId, retryLockedMs: leaseMs * 5 });
  return b.next((l) => l.id === id && l.event === 'result', 30_000);
}

async function expectConsistent(environment: string, version: string) {
  const pools = readPools(join(dir, environment)) as Array<{
    version: string;
    weight: number;
    replicas: number;
  }>;
  expect(pools.map((p) => [p.version, p.weight, p.replicas])).toEqual([[version, 100, 2]]);
  expect((await store.history(environment)).map((h) => h.version)).toEqual(['v1', version]);
  expect(await store.lockOwner(environment)).toBeUndefined();
}

async function leaseHost(environment: string): Promise<string | undefined> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const { rows } = await db.query<{ host: string }>(
      'SELECT host FROM resume.leases WHERE environment = $1',
      [environment],
    );
    return rows[0]?.host;
  } finally {
    await db.end();
  }
}

/** The step keys a v1 -> v2 release journals, read from a release that ran to the end. */
async function journalPoints(): Promise<string[]> {
  const a = await releasedV1('probe');
  a.send({ cmd: 'release', id: 'v2', environment: 'probe', version: 'v2' });
  const done = await a.next((l) => l.id === 'v2' && l.event === 'result');
  a.send({ cmd: 'exit' });
  const entries = await store.read(String(done.runId));
  return entries.flatMap((e) => (e.type === 'step-started' ? [e.key] : []));
}

describe('a release killed at a journal point', () => {
  it('resumes from another process with another host name, at every step the journal records', async () => {
    const keys = await journalPoints();
    expect(keys).toEqual(expect.arrayContaining(['preflight', 'deploy/0', 'verify', 'history']));
    const b = engineChild('host-b');
    // Five at a time: each case is a node process and a lease expiry.
    for (let i = 0; i < keys.length; i += 5) {
      await Promise.all(
        keys.slice(i, i + 5).map(async (key, j) => {
          const environment = `kill-${i + j}`;
          const a = await releasedV1(environment);
          a.send({ cmd: 'release', id: 'v2', environment, version: 'v2', killAt: key });
          expect((await a.exited).signal, `killed at ${key}`).toBe('SIGKILL');
          const [interrupted] = (await store.runs(environment)).filter((r) => r.status === undefined);
          const journal = await store.read(interrupted!.runId);
          expect(journal.at(-1), key).toMatchObject({ type: 'step-started', key });
          const result = await resumeOnHostB(b, environment, interrupted!.runId);
          expect(result, key).toMatchObject({
            runId: interrupted!.runId,
            status: 'succeeded',
            serving: 'v2',
          });
          await expectConsistent(environment, 'v2');
          // What was journaled before the kill is still the start of the journal.
          expect((await store.read(interrupted!.runId)).slice(0, journal.length)).toEqual(journal);
          // The lease was last taken by the resuming host.
          expect(await leaseHost(environment)).toBe('host-b');
        }),
      );
    }
    b.send({ cmd: 'exit' });
  });
});

describe('PostgreSQL stopped mid-release', () => {
  it('stops the run with CG_STORE_UNAVAILABLE, then resume completes it once the database is back', async () => {
    const environment = 'outage';
    const a = await releasedV1(environment);
    a.send({ cmd: 'release', id: 'v2', environment, version: 'v2', hold: true });
    const holding = await a.next((l) => l.id === 'v2' && l.event === 'holding');
    const runId = String(holding.runId);
    const before = await store.read(runId);
    await server.stop();
    const stoppedAt = Date.now();
    a.send({ cmd: 'continue', id: 'v2' });
    const failed = await a.next((l) => l.id === 'v2' && l.event === 'result', 30_000);
    expect(failed).toMatchObject({ code: 'CG_STORE_UNAVAILABLE' });
    expect(String(failed.message)).not.toMatch(/password/i);
    // The run stopped at its next step: after the call in flight, it told the target nothing more.
    const late = readCalls(join(dir, environment)).filter(
      (c: { pid: number; at: number }) => c.pid === a.proc.pid && c.at >= stoppedAt,
    );
    expect(late.length).toBeLessThanOrEqual(1);
    await server.start();
    const b = engineChild('host-b');
    const result = await resumeOnHostB(b, environment, runId);
    b.send({ cmd: 'exit' });
    expect(result).toMatchObject({ runId, status: 'succeeded', serving: 'v2' });
    await expectConsistent(environment, 'v2');
    expect((await store.read(runId)).slice(0, before.length)).toEqual(before);
    a.send({ cmd: 'exit' });
  });
});
