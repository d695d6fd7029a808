import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type BackupInfo, ReleaseError } from '@codegraph/release-core';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { type BlobStore, localBlobStore, type RocksdbBackup, rocksdbBackup } from '../src/index.js';
import { fillDatabase, ldbPut, requireTools, scan, tempDirs, waitFor } from './helpers.js';

// A failpoint on renames: the `at`-th rename whose target `match`es fails, leaving the disk exactly as a
// crash at that point would (the process's own cleanup never touches a swap in progress).
const failpoint = vi.hoisted(() => ({ match: (_to: string): boolean => false, at: -1, seen: 0 }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    async rename(from: string, to: string) {
      if (failpoint.match(String(to)) && failpoint.seen++ === failpoint.at) {
        throw new Error(`simulated crash at rename ${failpoint.at}`);
      }
      return actual.rename(from, to);
    },
  };
});

function failAt(at: number, match: (to: string) => boolean): void {
  Object.assign(failpoint, { match, at, seen: 0 });
}
const noFailure = () => failAt(-1, () => false);

const tmp = tempDirs();

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ReleaseError) return err.code;
    throw err;
  }
  throw new Error('expected the call to fail');
}

/** A process id that no process has any more. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

describe('restore swaps its directories crash-atomically and under the repository lock', () => {
  let root: string;
  let data: string;
  let db: string;
  let vector: string;
  let repo: string;
  let backup: RocksdbBackup;
  let old: { info: BackupInfo; scan: string };
  let clock = Date.parse('2026-11-01T02:00:00Z');

  beforeAll(async () => {
    await requireTools('ldb', 'db_bench');
    root = await tmp('swap');
    data = join(root, 'data');
    db = join(data, 'rocksdb');
    vector = join(data, 'vector');
    repo = join(root, 'backups');
    await mkdir(vector, { recursive: true });
    await writeFile(join(vector, 'index.faiss'), 'vectors v1');
    await fillDatabase(db, { num: 10_000, seed: 61 });
    backup = rocksdbBackup({ repository: repo, db, extras: { vector }, now: () => new Date(clock) });
    old = { info: await backup.create({ reason: 'scheduled' }), scan: await scan(db) };
  });

  /** Changes both components, so that "old" and "new" are told apart in each. */
  async function moveOn(tag: string): Promise<string> {
    await ldbPut(db, { moved: tag });
    await writeFile(join(vector, 'index.faiss'), `vectors ${tag}`);
    clock += 60_000;
    return scan(db);
  }

  for (const at of [0, 1, 2, 3]) {
    it(`a crash at swap rename ${at} is rolled forward by the next run: all new, never half`, async () => {
      const current = await moveOn(`crash-${at}`);
      // Only the directory swaps count (not the intent record's own write).
      failAt(at, (to) => to.startsWith(data) && !to.endsWith('.json'));
      try {
        await expect(backup.restore({ id: old.info.id })).rejects.toThrow(/simulated crash/);
      } finally {
        noFailure();
      }
      expect(await readdir(data)).toContain('.rocksdb.restore-intent.json');
      // The next run (here a backup) first finishes the restore: both components are the backup's.
      const after = await backup.create({ reason: 'manual' });
      expect(await scan(db)).toBe(old.scan);
      expect(await readFile(join(vector, 'index.faiss'), 'utf8')).toBe('vectors v1');
      const names = await readdir(data);
      expect(names.filter((n) => n.startsWith('.'))).toEqual([]);
      // What was live before the restore is kept aside, whole.
      const asides = names.filter((n) => n.startsWith('rocksdb.pre-recovery.')).sort();
      const newest = asides.at(-1)!;
      expect(await scan(join(data, newest))).toBe(current);
      const listed = (await backup.list()).map((b) => b.id);
      expect(listed).toContain(after.id);
    });
  }

  it('a crash before the intent is written leaves all old, and the staging copies are cleaned', async () => {
    const current = await moveOn('before-intent');
    // Fails the write of the intent record itself (its rename into place).
    failAt(0, (to) => to === join(data, '.rocksdb.restore-intent.json'));
    try {
      await expect(backup.restore({ id: old.info.id })).rejects.toThrow(/simulated crash/);
    } finally {
      noFailure();
    }
    expect(await scan(db)).toBe(current);
    expect(await readFile(join(vector, 'index.faiss'), 'utf8')).toBe('vectors before-intent');
    expect((await readdir(data)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('removes the hidden staging copies an interrupted restore left, but not those of a live one', async () => {
    const dead = join(data, `.rocksdb.restore-${old.info.id}-${await deadPid()}-0123456789ab`);
    const sleeper = spawn('sleep', ['30']);
    const live = join(data, `.vector.restore-${old.info.id}-${sleeper.pid}-0123456789ab`);
    try {
      for (const dir of [dead, live]) {
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'CURRENT'), 'MANIFEST-000001\n');
      }
      await backup.restore({ id: old.info.id });
      const names = await readdir(data);
      expect(names).not.toContain(dead.slice(data.length + 1));
      expect(names).toContain(live.slice(data.length + 1));
    } finally {
      sleeper.kill('SIGKILL');
    }
    await backup.restore({ id: old.info.id });
    expect((await readdir(data)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('prune cannot delete a backup while it is being restored', async () => {
    await moveOn('prune-race');
    const newer = await backup.create({ reason: 'manual' });
    const local = localBlobStore(repo);
    let open!: () => void;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    let waiting = false;
    // A store whose first read waits, holding the restore in its staging phase.
    const slow: BlobStore = {
      ...local,
      localPath: undefined,
      async *readBlob(sha256, io) {
        if (!waiting) {
          waiting = true;
          await gate;
        }
        yield* local.readBlob(sha256, io);
      },
    };
    const restoring = rocksdbBackup({ repository: slow, db, extras: { vector }, concurrency: 1 }).restore({
      id: old.info.id,
    });
    await waitFor('the restore to start staging', () => (waiting ? true : undefined));
    expect(await codeOf(backup.prune({ keepLast: 1 }))).toBe('CG_BACKUP_FAILED');
    open();
    await restoring;
    expect(await scan(db)).toBe(old.scan);
    expect((await backup.list()).map((b) => b.id)).toContain(old.info.id);
    expect((await backup.verify(old.info.id)).ok).toBe(true);
    expect((await backup.prune({ keepLast: 1 })).kept).toContain(newer.id);
  });
});
