import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresStore } from '@codegraph/store-postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readPools } from './fixtures/recording-target.mjs';
import { type Child, killChildren, startChild } from './helpers/children.js';
import { startPostgres, type TestPostgres } from './helpers/postgres.js';

// An operator on another host promotes and aborts a canary that is paused in an engine process: the
// requests travel as rows through PostgreSQL (LISTEN/NOTIFY), the run acts on them and answers.
let server: TestPostgres;
let url: string;
let dir: string;
let store: ReturnType<typeof postgresStore>;
beforeAll(async () => {
  server = await startPostgres();
  url = await server.createDatabase('control');
  dir = await fs.mkdtemp(join(tmpdir(), 'cg-pg-control-'));
  store = postgresStore({ connectionString: url, schema: 'control' });
});
afterEach(() => killChildren());
afterAll(async () => {
  killChildren();
  await store?.close();
  await server?.destroy();
  await fs.rm(dir, { recursive: true, force: true });
});

const engineChild = (host: string): Child =>
  startChild('engine-child.mjs', {
    CG_PG_URL: url,
    CG_PG_SCHEMA: 'control',
    CG_LEASE_MS: '5000',
    CG_TARGET_DIR: dir,
    CG_HOST: host,
  });

/** Waits until the canary pool of `environment` takes `weight` percent of the traffic. */
async function canaryAt(environment: string, weight: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const pools = readPools(join(dir, environment));
    if (pools.some((p) => p.version === 'v2' && p.weight === weight)) return;
    if (Date.now() > deadline) throw new Error(`canary never reached ${weight} %: ${JSON.stringify(pools)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The run is paused: its journal's last entry is a started pause step that has not finished. */
async function pausedRun(environment: string): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const [run] = (await store.runs(environment)).filter((r) => r.status === undefined && r.version === 'v2');
    const last = run ? (await store.read(run.runId)).at(-1) : undefined;
    if (run && last?.type === 'step-started' && JSON.stringify(last.input ?? '').includes('pause'))
      return run.runId;
    if (Date.now() > deadline) throw new Error(`no paused run: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function control(from: Child, id: string, request: Record<string, unknown>) {
  from.send({ cmd: 'control', id, request });
  return from.next((l) => l.id === id && l.event === 'reply', 20_000);
}

describe('control from another process', () => {
  it('promote and abort from a second process reach a canary paused in the first', async () => {
    const environment = 'canary-env';
    const a = engineChild('host-a');
    const b = engineChild('host-b');
    a.send({ cmd: 'release', id: 'v1', environment, version: 'v1' });
    expect(await a.next((l) => l.id === 'v1' && l.event === 'result')).toMatchObject({ status: 'succeeded' });
    a.send({ cmd: 'release', id: 'v2', environment, version: 'v2', strategy: 'canary' });
    await canaryAt(environment, 10);
    const runId = await pausedRun(environment);

    const promoted = await control(b, 'p1', { environment, runId, action: 'promote', by: 'alice' });
    expect(promoted.reply).toMatchObject({ runId, action: 'promote', applied: true });
    await canaryAt(environment, 50);
    await pausedRun(environment);

    const aborted = await control(b, 'a1', {
      environment,
      action: 'abort',
      reason: 'p95 doubled on host-b dashboards',
    });
    expect(aborted.reply).toMatchObject({ runId, action: 'abort', applied: true });
    const result = await a.next((l) => l.id === 'v2' && l.event === 'result', 30_000);
    expect(result).toMatchObject({ runId });
    expect(result.status).not.toBe('succeeded');
    const pools = readPools(join(dir, environment));
    expect(pools.map((p) => [p.version, p.weight])).toEqual([['v1', 100]]);
    // The run journaled what it was asked and what it did.
    const notes = (await store.read(runId)).flatMap((e) => (e.type === 'note' ? [e.message] : []));
    expect(notes.some((m) => m.startsWith('promote requested from another process'))).toBe(true);
    expect(notes.some((m) => m.startsWith('abort requested from another process'))).toBe(true);
    a.send({ cmd: 'exit' });
    b.send({ cmd: 'exit' });
  });
});
