import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type BackupInfo, ReleaseError } from '@codegraph/release-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type BlobStore, localBlobStore, type RocksdbBackup, rocksdbBackup } from '../src/index.js';
import {
  blobFile,
  fillDatabase,
  flipByte,
  ldbPut,
  requireTools,
  scan,
  storedManifest,
  tempDirs,
} from './helpers.js';

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

const sumsOf = (files: Array<{ path: string; sha256: string }>) =>
  files.map((f) => `${f.sha256}  ${f.path}\n`).join('');

describe('a repository never trusts the records it reads back', () => {
  let root: string;
  let db: string;
  let repo: string;
  let backup: RocksdbBackup;
  let first: BackupInfo;
  let second: BackupInfo;
  let clock = Date.parse('2026-11-01T02:00:00Z');

  beforeAll(async () => {
    await requireTools('ldb', 'db_bench');
    root = await tmp('trust');
    db = join(root, 'data', 'rocksdb');
    repo = join(root, 'backups');
    await fillDatabase(db, { num: 20_000, seed: 51 });
    backup = rocksdbBackup({ repository: repo, db, now: () => new Date(clock) });
    first = await backup.create({ reason: 'scheduled' });
    await ldbPut(db, { second: 'backup' });
    clock += 3600_000;
    second = await backup.create({ reason: 'scheduled' });
  });

  it('keeps a per-repository manifest key, created on first use and readable by its owner only', async () => {
    const key = join(repo, 'keys', 'manifest-hmac');
    expect((await stat(key)).mode & 0o777).toBe(0o600);
    expect((await readFile(key, 'utf8')).trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(await readdir(join(repo, 'backups', first.id))).toContain('manifest.hmac');
  });

  it('refuses a manifest whose entries were swapped consistently, with or without SHA256SUMS, and leaves the live data alone', async () => {
    const live = await scan(db);
    const { path, manifest } = await storedManifest(repo, first.id);
    const original = await readFile(path, 'utf8');
    const originalSums = await readFile(join(repo, 'backups', first.id, 'SHA256SUMS'), 'utf8');
    // Two SST files of the same size swap their hashes: every blob is intact, the database would not be.
    const ssts = manifest.files.filter((f) => f.path.endsWith('.sst'));
    const [a, b] = [ssts[0]!, ssts[1]!];
    const swapped = {
      ...manifest,
      files: manifest.files.map((f) =>
        f.path === a.path
          ? { ...f, sha256: b.sha256, size: b.size }
          : f.path === b.path
            ? { ...f, sha256: a.sha256, size: a.size }
            : f,
      ),
    };
    const sizes = swapped.files.reduce((n, f) => n + f.size, 0);
    const meta = manifest['metadata'] as { sizeBytes: number };
    const edited = { ...swapped, metadata: { ...meta, sizeBytes: sizes } };
    try {
      await writeFile(path, `${JSON.stringify(edited, null, 2)}\n`);
      const v1 = await backup.verify(first.id);
      expect(v1.ok).toBe(false);
      expect(v1.problems).toEqual([
        expect.objectContaining({ path: 'manifest.json', detail: expect.stringMatching(/SHA256SUMS/) }),
      ]);
      expect(await codeOf(backup.restore({ id: first.id }))).toBe('CG_BACKUP_CORRUPT');

      // Edited together with SHA256SUMS, the manifest still fails its authentication.
      await writeFile(join(repo, 'backups', first.id, 'SHA256SUMS'), sumsOf(edited.files));
      const v2 = await backup.verify(first.id, { level: 'scan' });
      expect(v2.ok).toBe(false);
      expect(v2.problems[0]?.detail).toMatch(/authentication/);
      expect(await codeOf(backup.restore({ id: first.id }))).toBe('CG_BACKUP_CORRUPT');
      expect(await scan(db)).toBe(live);
      expect((await readdir(join(root, 'data'))).sort()).toEqual(['rocksdb']);
    } finally {
      await writeFile(path, original);
      await writeFile(join(repo, 'backups', first.id, 'SHA256SUMS'), originalSums);
    }
    expect((await backup.verify(first.id)).ok).toBe(true);
  });

  it('lists a backup whose manifest is damaged as damaged, refuses it with CG_BACKUP_CORRUPT, and keeps the others working', async () => {
    const { path } = await storedManifest(repo, first.id);
    const original = await readFile(path, 'utf8');
    try {
      await writeFile(path, original.slice(0, original.length >> 1));
      const list = await backup.list();
      expect(list.map((b) => b.id)).toEqual([second.id, first.id]);
      expect(list[1]).toMatchObject({
        id: first.id,
        createdAt: first.createdAt,
        damaged: { reason: expect.stringMatching(/not valid JSON/) },
      });
      expect(list[0]?.damaged).toBeUndefined();
      expect(await codeOf(backup.restore({ id: first.id }))).toBe('CG_BACKUP_CORRUPT');
      expect(await codeOf(backup.restore({ at: first.createdAt }))).toBe('CG_BACKUP_CORRUPT');
      expect((await backup.verify(first.id)).ok).toBe(false);
      // Retention neither removes the damaged backup nor collects the blobs its manifest still names.
      const pruned = await backup.prune({ keepLast: 1 });
      expect(pruned.removed).toEqual([]);
      expect((await backup.list()).map((b) => b.id)).toEqual([second.id, first.id]);
      const expected = await scan(db);
      const target = join(root, 'elsewhere', 'rocksdb');
      await rocksdbBackup({ repository: repo, db: target }).restore({ id: second.id });
      expect(await scan(target)).toBe(expected);
    } finally {
      await writeFile(path, original);
    }
    expect((await backup.verify(first.id)).ok).toBe(true);
  });

  it('checks the staged files as they are on disk before they replace the live data', async () => {
    const local = localBlobStore(repo);
    let reads = 0;
    // A store whose reads damage a file already staged (a disk that corrupts what was written).
    const tampering: BlobStore = {
      ...local,
      localPath: undefined,
      async *readBlob(sha256, io) {
        if (++reads === 3) {
          const parent = join(root, 'data');
          const staging = (await readdir(parent)).find((n) => n.startsWith('.rocksdb.restore-'))!;
          const staged = (await readdir(join(parent, staging)))[0]!;
          await flipByte(join(parent, staging, staged), 0);
        }
        yield* local.readBlob(sha256, io);
      },
    };
    const live = await scan(db);
    const err = await rocksdbBackup({ repository: tampering, db, concurrency: 1 })
      .restore({ id: second.id })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CG_BACKUP_CORRUPT', message: expect.stringMatching(/rocksdb\//) });
    expect(await scan(db)).toBe(live);
    expect((await readdir(join(root, 'data'))).sort()).toEqual(['rocksdb']);
  });

  it('heals a rotted blob on the next backup instead of reusing it', async () => {
    const { manifest } = await storedManifest(repo, second.id);
    const victim = manifest.files.filter((f) => f.path.endsWith('.sst')).sort((x, y) => y.size - x.size)[0]!;
    await flipByte(blobFile(repo, victim.sha256), victim.size >> 1);
    expect((await backup.verify(second.id)).ok).toBe(false);
    clock += 3600_000;
    const third = await backup.create({ reason: 'scheduled' });
    const next = (await storedManifest(repo, third.id)).manifest;
    expect(next.files.find((f) => f.path === victim.path)?.sha256).toBe(victim.sha256);
    // The new backup is born whole, and the shared blob is whole again for the older backup too.
    expect((await backup.verify(third.id)).ok).toBe(true);
    expect((await backup.verify(second.id)).ok).toBe(true);
    await mkdir(join(root, 'heal'), { recursive: true });
    const target = join(root, 'heal', 'rocksdb');
    await rocksdbBackup({ repository: repo, db: target }).restore({ id: third.id });
    expect(await scan(target)).toBe(await scan(db));

    // Unnoticed rot (no verification ran): once the blob's last read-back is older than
    // reuseVerifiedWithinMs (24 h by default), the next backup reads it back, finds it, and writes it again.
    await flipByte(blobFile(repo, victim.sha256), 7);
    clock += 25 * 3600_000;
    const fourth = await backup.create({ reason: 'scheduled' });
    expect((await backup.verify(fourth.id)).ok).toBe(true);
    expect((await backup.verify(third.id)).ok).toBe(true);
  });

  it('reads back every reused blob when reuseVerifiedWithinMs is 0', async () => {
    const strict = rocksdbBackup({
      repository: repo,
      db,
      now: () => new Date(clock),
      reuseVerifiedWithinMs: 0,
    });
    const latest = (await backup.list())[0]!;
    const { manifest } = await storedManifest(repo, latest.id);
    const victim = manifest.files.filter((f) => f.path.endsWith('.sst')).sort((x, y) => y.size - x.size)[1]!;
    await flipByte(blobFile(repo, victim.sha256), 3);
    clock += 60_000;
    const next = await strict.create({ reason: 'manual' });
    expect((await strict.verify(next.id)).ok).toBe(true);
    expect(() => rocksdbBackup({ repository: repo, db, reuseVerifiedWithinMs: -1 })).toThrow(
      /reuseVerifiedWithinMs/,
    );
  });
});
