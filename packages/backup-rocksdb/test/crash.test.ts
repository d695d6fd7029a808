import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rocksdbBackup } from '../src/index.js';
import { fillDatabase, ldbPut, requireTools, scan, tempDirs, waitFor } from './helpers.js';

const tmp = tempDirs();
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const viteNode = here('../../../node_modules/vite-node/vite-node.mjs');
const config = here('../../../vitest.config.ts');
const child = here('./fixtures/backup-child.ts');
const restoreChild = here('./fixtures/restore-child.ts');

// A seeded generator, so a failing run can be replayed with CRASH_SEED.
const seed = Number(process.env['CRASH_SEED'] ?? Date.now() % 1_000_000);
let state = seed;
const random = () => {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const running = new Set<ChildProcess>();
afterEach(() => {
  for (const c of running) c.kill('SIGKILL');
  running.clear();
});

/** Runs a backup in a child process and SIGKILLs it after `afterFiles` stored files or `afterMs`. */
async function backupKilled(repository: string, db: string, kill: { afterFiles?: number; afterMs?: number }) {
  const proc = spawn(process.execPath, [viteNode, '--config', config, child, repository, db], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  proc.stderr?.on('data', (d) => {
    err += String(d);
  });
  proc.stdout?.on('data', (d) => {
    out += String(d);
    const stored = out.split('\n').filter((l) => l.startsWith('stored ')).length;
    if (kill.afterFiles !== undefined && stored >= kill.afterFiles) proc.kill('SIGKILL');
  });
  if (kill.afterMs !== undefined) {
    await waitFor(
      'the child backup to start',
      () => (out.includes('ready') ? true : (proc.exitCode ?? undefined)),
      30_000,
    );
    setTimeout(() => proc.kill('SIGKILL'), kill.afterMs);
  }
  const code = await exited;
  running.delete(proc);
  const done = /done (\S+)/.exec(out)?.[1];
  if (!done && proc.signalCode !== 'SIGKILL') throw new Error(`the child backup failed (${code}): ${err}`);
  return done;
}

describe('a backup killed at random points', () => {
  let root: string;
  let db: string;
  let repository: string;

  beforeAll(async () => {
    await requireTools('ldb', 'db_bench');
    root = await tmp('crash');
    db = join(root, 'rocksdb');
    repository = join(root, 'backups');
    await fillDatabase(db, { num: 20_000, seed: 31 });
  });

  it(`leaves the repository valid, and the next backup succeeds (seed ${seed})`, async () => {
    const backup = rocksdbBackup({ repository, db });
    const baseline = await backup.create({ reason: 'scheduled' });
    await fillDatabase(db, { num: 20_000, writes: 4_000, seed: 32 });
    const completed = [baseline.id];
    let killed = 0;
    let staleLocks = 0;

    for (let round = 0; round < 6; round++) {
      const kill =
        round % 2 === 0
          ? { afterFiles: 1 + Math.floor(random() * 12) }
          : { afterMs: Math.floor(random() * 400) };
      const done = await backupKilled(repository, db, kill);
      if (done) completed.push(done);
      else {
        killed++;
        if ((await readdir(repository)).includes('LOCK')) staleLocks++;
      }
      // Only whole backups are listed, and every one of them is intact. A child killed after its commit
      // but before it printed "done" leaves one whole backup more: it must verify like the others.
      const listed = (await backup.list()).map((b) => b.id).sort();
      const extra = listed.filter((id) => !completed.includes(id));
      expect(extra.length, `round ${round} ${JSON.stringify(kill)}`).toBeLessThanOrEqual(done ? 0 : 1);
      completed.push(...extra);
      expect(listed, `round ${round} ${JSON.stringify(kill)}`).toEqual([...completed].sort());
      expect((await backup.list()).filter((b) => b.damaged)).toEqual([]);
      for (const id of listed) expect((await backup.verify(id)).ok, `round ${round}: ${id}`).toBe(true);
    }

    // Every round that counts files is killed before the backup ends (the database has more files than that).
    expect(killed).toBeGreaterThanOrEqual(3);
    expect(staleLocks).toBeGreaterThan(0);

    // The next backup takes over the lock the killed process left, and restores what the database holds.
    const expected = await scan(db);
    const next = await backup.create({ reason: 'scheduled' });
    const target = join(root, 'restored');
    await rocksdbBackup({ repository, db: target }).restore({ id: next.id });
    expect(await scan(target)).toBe(expected);
    const first = join(root, 'restored-baseline');
    await rocksdbBackup({ repository, db: first }).restore({ id: baseline.id });
    expect((await scan(first)).length).toBeGreaterThan(0);

    // Garbage collection removes what the killed runs left, and nothing any backup needs.
    await backup.prune({ keepLast: 100 });
    expect(await readdir(join(repository, 'tmp'))).toEqual([]);
    const referenced = new Set<string>();
    for (const b of await backup.list()) {
      const m = JSON.parse(await readFile(join(repository, 'backups', b.id, 'manifest.json'), 'utf8')) as {
        files: Array<{ sha256: string }>;
      };
      for (const f of m.files) referenced.add(f.sha256);
      expect((await backup.verify(b.id)).ok).toBe(true);
    }
    const blobs = (await readdir(join(repository, 'blobs', 'sha256'), { recursive: true })).filter((n) =>
      /[0-9a-f]{64}$/.test(n),
    );
    expect(blobs.length).toBe(referenced.size);
  }, 180_000);
});

describe('a backup cancelled through its AbortSignal', () => {
  it('stops with CG_ABORTED, lists nothing new, and frees the repository for the next backup', async () => {
    await requireTools('ldb', 'db_bench');
    const root = await tmp('abort');
    const db = join(root, 'rocksdb');
    await fillDatabase(db, { num: 8_000, seed: 41 });
    const controller = new AbortController();
    const backup = rocksdbBackup({
      repository: join(root, 'backups'),
      db,
      concurrency: 1,
      onProgress: () => controller.abort(new Error('operator cancelled')),
    });
    await expect(backup.create({ reason: 'manual' }, { signal: controller.signal })).rejects.toMatchObject({
      code: 'CG_ABORTED',
    });
    await expect(backup.create({ reason: 'manual' }, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'CG_ABORTED',
    });
    expect(await backup.list()).toEqual([]);
    const done = await rocksdbBackup({ repository: join(root, 'backups'), db }).create({ reason: 'manual' });
    expect((await backup.list()).map((b) => b.id)).toEqual([done.id]);
  });
});

describe('a restore killed at random points', () => {
  it('leaves the database and its extras from one time only: all old, or (after the next run) all new', async () => {
    await requireTools('ldb', 'db_bench');
    const root = await tmp('restore-crash');
    const db = join(root, 'data', 'rocksdb');
    const vector = join(root, 'data', 'vector');
    const repository = join(root, 'backups');
    await mkdir(vector, { recursive: true });
    await fillDatabase(db, { num: 20_000, seed: 33 });
    await writeFile(join(vector, 'index.faiss'), 'backup');
    const backup = rocksdbBackup({ repository, db, extras: { vector } });
    const { id } = await backup.create({ reason: 'scheduled' });
    const fromBackup = await scan(db);
    const outcomes = new Set<string>();

    for (let round = 0; round < 4; round++) {
      // The live state differs from the backup in both components.
      await ldbPut(db, { live: `round ${round}` });
      await writeFile(join(vector, 'index.faiss'), `live ${round}`);
      const live = await scan(db);
      const proc = spawn(
        process.execPath,
        [viteNode, '--config', config, restoreChild, repository, db, vector, id],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      running.add(proc);
      let out = '';
      let err = '';
      proc.stdout?.on('data', (d) => {
        out += String(d);
      });
      proc.stderr?.on('data', (d) => {
        err += String(d);
      });
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      await waitFor(
        'the child restore to start',
        () => (out.includes('ready') ? true : (proc.exitCode ?? undefined)),
        30_000,
      );
      const killAfter = Math.floor(random() * 600);
      const timer = setTimeout(() => proc.kill('SIGKILL'), killAfter);
      await exited;
      clearTimeout(timer);
      running.delete(proc);
      if (proc.signalCode !== 'SIGKILL' && !out.includes('done'))
        throw new Error(`the child restore failed: ${err}`);

      // The next run (a backup) finishes or forgets the interrupted restore first.
      await backup.create({ reason: 'manual' });
      const db2 = await scan(db);
      const vec = await readFile(join(vector, 'index.faiss'), 'utf8');
      const state =
        db2 === fromBackup && vec === 'backup'
          ? 'new'
          : db2 === live && vec === `live ${round}`
            ? 'old'
            : 'mixed';
      expect(state, `round ${round}, killed after ${killAfter} ms (seed ${seed})`).not.toBe('mixed');
      outcomes.add(state);
      expect(
        (await readdir(join(root, 'data'))).filter((n) => n.startsWith('.')),
        `round ${round}`,
      ).toEqual([]);
    }
    expect(outcomes.size).toBeGreaterThan(0);
  }, 180_000);
});
