import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileStore } from '../src/index.js';
import { releaseEnv } from './helpers/release-env.js';

let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});
const tempDir = async () => {
  const d = await fs.mkdtemp(join(tmpdir(), 'cg-damage-'));
  cleanups.push(() => fs.rm(d, { recursive: true, force: true }));
  return d;
};
const header = (runId: string, environment: string, startedAt = new Date().toISOString()) => ({
  runId,
  kind: 'release' as const,
  environment,
  version: 'v1',
  startedAt,
  strategy: 'rolling',
  target: 'local',
});

describe('a damaged journal stays where it is', () => {
  it('repairs a torn final line on the next append, so the entries after it are not lost', async () => {
    const dir = await tempDir();
    const store = fileStore({ dir });
    await store.append('r1', { type: 'run', header: header('r1', 'prod') });
    await store.append('r1', { type: 'note', message: 'whole' });
    const file = join(dir, 'runs', 'r1.jsonl');
    await fs.appendFile(file, '{"seq":2,"time":"2026-01-01T00:00:00.000Z","type":"note","mess'); // a crash mid-write
    expect((await store.read('r1')).map((e) => e.seq)).toEqual([0, 1]); // a reader ignores it
    // Another process (no cached state) appends twice: both land, numbered after the whole lines.
    const other = fileStore({ dir });
    await other.append('r1', { type: 'note', message: 'after the crash' });
    await store.append('r1', { type: 'note', message: 'and after that' });
    const entries = await fileStore({ dir }).read('r1');
    expect(entries.map((e) => [e.seq, e.type === 'note' ? e.message : e.type])).toEqual([
      [0, 'run'],
      [1, 'whole'],
      [2, 'after the crash'],
      [3, 'and after that'],
    ]);
    const text = await fs.readFile(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    for (const l of text.trim().split('\n')) expect(() => JSON.parse(l)).not.toThrow();
  });

  it('ignores a line a holder wrote with an older token after the new holder wrote (paused between check and write)', async () => {
    const dir = await tempDir();
    await fs.mkdir(join(dir, 'runs'), { recursive: true });
    const line = (seq: number, message: string, fence?: number) =>
      `${JSON.stringify({ seq, time: '2026-01-01T00:00:00.000Z', type: 'note', message, ...(fence ? { fence } : {}) })}\n`;
    await fs.writeFile(
      join(dir, 'runs', 'r1.jsonl'),
      line(0, 'old holder', 3) +
        line(1, 'old holder again', 3) +
        line(2, 'new holder', 4) +
        line(3, 'late stale write', 3) +
        line(4, 'unfenced'),
    );
    const entries = await fileStore({ dir }).read('r1');
    expect(entries.map((e) => (e.type === 'note' ? e.message : e.type))).toEqual([
      'old holder',
      'old holder again',
      'new holder',
      'unfenced',
    ]);
    expect(entries.every((e) => !('fence' in e))).toBe(true);
  });

  it("one environment's damaged journal never blocks listing runs in another, and is skipped and reported in its own", async () => {
    const dir = await tempDir();
    const damaged: string[] = [];
    const store = fileStore({ dir, onDamaged: ({ file }) => damaged.push(file) });
    await store.append('p1', { type: 'run', header: header('p1', 'prod', '2026-01-01T00:00:00.000Z') });
    await store.append('p2', { type: 'run', header: header('p2', 'prod', '2026-01-02T00:00:00.000Z') });
    await store.append('s1', { type: 'run', header: header('s1', 'staging', '2026-01-03T00:00:00.000Z') });
    await store.append('s1', { type: 'finished', status: 'succeeded' });
    await fs.appendFile(
      join(dir, 'runs', 'p1.jsonl'),
      'GARBAGE IN THE MIDDLE\n{"seq":9,"time":"x","type":"note","message":"m"}\n',
    );
    expect((await store.runs('staging')).map((r) => [r.runId, r.status])).toEqual([['s1', 'succeeded']]);
    expect(damaged).toEqual([]); // staging's listing never read production's journals
    expect((await store.runs('prod')).map((r) => r.runId)).toEqual(['p2']);
    expect(damaged).toEqual([join(dir, 'runs', 'p1.jsonl')]);
    expect((await store.runs()).map((r) => r.runId)).toEqual(['s1', 'p2']);
    await expect(store.read('p1')).rejects.toMatchObject({ code: 'CG_STORE_FAILED' });
  });

  it('indexes the runs of a store written before the per-environment index, skipping damaged journals', async () => {
    const dir = await tempDir();
    await fs.mkdir(join(dir, 'runs'), { recursive: true });
    const line = (v: object) => `${JSON.stringify(v)}\n`;
    await fs.writeFile(
      join(dir, 'runs', 'old-a.jsonl'),
      line({ seq: 0, time: 't', type: 'run', header: header('old-a', 'prod', '2025-01-01T00:00:00.000Z') }),
    );
    await fs.writeFile(join(dir, 'runs', 'old-b.jsonl'), 'not json at all\n{}\n');
    const damaged: string[] = [];
    const store = fileStore({ dir, onDamaged: ({ file }) => damaged.push(file) });
    expect((await store.runs('prod')).map((r) => r.runId)).toEqual(['old-a']);
    expect(damaged).toEqual([join(dir, 'runs', 'old-b.jsonl')]);
  });

  it('a damaged journal never blocks an emergency rollback', { timeout: 120_000 }, async () => {
    const env = await releaseEnv();
    cleanups.push(() => env.cleanup());
    expect((await env.engine.release({ version: 'v1' })).status).toBe('succeeded');
    const v2 = await env.engine.release({ version: 'v2' });
    expect(v2.status).toBe('succeeded');
    // v2's journal is damaged in the middle, and a journal of another environment too.
    const runs = join(env.dir, 'store', 'runs');
    const text = await fs.readFile(join(runs, `${v2.runId}.jsonl`), 'utf8');
    const lines = text.trim().split('\n');
    lines.splice(3, 1, '{"seq": torn by a bad disk');
    await fs.writeFile(join(runs, `${v2.runId}.jsonl`), `${lines.join('\n')}\n`);
    const other = fileStore({ dir: join(env.dir, 'store') });
    await other.append('prod-1', { type: 'run', header: header('prod-1', 'production') });
    await fs.appendFile(join(runs, 'prod-1.jsonl'), 'GARBAGE\n{}\n');
    const result = await env.engine.rollback({ to: 'v1', reason: 'v2 corrupts search', confirm: 'CONFIRM' });
    expect(result).toMatchObject({ kind: 'rollback', status: 'succeeded', serving: 'v1' });
    expect(await env.serving()).toBe('v1');
    expect((await env.engine.status()).lastRun?.runId).toBe(result.runId);
    expect(await other.lockOwner('staging')).toBeUndefined();
  });
});
