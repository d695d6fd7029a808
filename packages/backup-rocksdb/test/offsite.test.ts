import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type BlobStore,
  localBlobStore,
  type MirroredBlobStore,
  mirroredBlobStore,
  type RocksdbBackup,
  rocksdbBackup,
} from '../src/index.js';
import { blobFile, fillDatabase, flipByte, requireTools, scan, storedManifest, tempDirs } from './helpers.js';

const tmp = tempDirs();

async function blobCount(repository: string): Promise<number> {
  const names = await readdir(join(repository, 'blobs'), { recursive: true }).catch(() => [] as string[]);
  return names.filter((n) => /[0-9a-f]{64}$/.test(n)).length;
}

describe('local + offsite: a mirrored repository over two stores', () => {
  let root: string;
  let db: string;
  let local: string;
  let offsite: string;
  let store: MirroredBlobStore;
  let backup: RocksdbBackup;
  let first: string;
  let firstScan: string;
  let clock = Date.parse('2026-11-01T02:00:00Z');

  async function codeOfRestore(target: string): Promise<string | undefined> {
    const err = await rocksdbBackup({ repository: store, db: target })
      .restore({ id: first })
      .catch((e: unknown) => e);
    return (err as { code?: string } | undefined)?.code;
  }

  beforeAll(async () => {
    await requireTools('ldb', 'db_bench');
    root = await tmp('offsite');
    db = join(root, 'rocksdb');
    local = join(root, 'local');
    offsite = join(root, 'offsite');
    await fillDatabase(db, { num: 20_000, seed: 91 });
    store = mirroredBlobStore(localBlobStore(local), localBlobStore(offsite));
    backup = rocksdbBackup({ repository: store, db, now: () => new Date(clock) });
  });

  it('backs up locally first and copies the backup offsite in the background, manifest last', async () => {
    firstScan = await scan(db);
    first = (await backup.create({ reason: 'scheduled' })).id;
    const report = await store.settled();
    expect(report).toMatchObject({ copied: [first], failed: [], fallbacks: [] });
    const { manifest } = await storedManifest(local, first);
    expect(report.blobsCopied).toBe(new Set(manifest.files.map((f) => f.sha256)).size);
    expect((await storedManifest(offsite, first)).manifest).toEqual(manifest);
    expect(await readdir(join(offsite, 'keys'))).toEqual(['manifest-hmac']);
    // Nothing more to copy until something changes.
    expect(await store.sync()).toMatchObject({ copied: [], blobsCopied: 0 });
  });

  it('copies only the blobs the offsite copy lacks on the next backup', async () => {
    await fillDatabase(db, { num: 20_000, writes: 2_000, seed: 92 });
    clock += 3600_000;
    const second = await backup.create({ reason: 'scheduled' });
    const report = await store.settled();
    expect(report.copied).toEqual([second.id]);
    const { manifest } = await storedManifest(local, second.id);
    const known = new Set((await storedManifest(local, first)).manifest.files.map((f) => f.sha256));
    const fresh = new Set(manifest.files.filter((f) => !known.has(f.sha256)).map((f) => f.sha256));
    expect(report.blobsCopied).toBe(fresh.size);
    expect(await blobCount(offsite)).toBe(await blobCount(local));
  });

  it('reports both copies in verify, and restores from the offsite copy what is missing or damaged locally', async () => {
    const { manifest } = await storedManifest(local, first);
    const ssts = manifest.files.filter((f) => f.path.endsWith('.sst')).sort((a, b) => b.size - a.size);
    const [rotted, lost] = [ssts[0]!, ssts[1]!];
    await flipByte(blobFile(local, rotted.sha256), rotted.size >> 1);
    await rm(blobFile(local, lost.sha256), { force: true });

    // Each copy is reported; the backup itself is still whole (every file is intact in one copy).
    const v = await backup.verify(first);
    expect(v).toMatchObject({ ok: true, problems: [] });
    expect(v.copies?.map((c) => [c.location, c.ok])).toEqual([
      [local, false],
      [offsite, true],
    ]);
    expect(v.copies?.[0]?.problems.map((p) => [p.path, p.problem]).sort()).toEqual(
      [
        [rotted.path, 'checksum'],
        [lost.path, 'missing'],
      ].sort(),
    );

    // A file damaged in both copies is a problem of the backup, named with each copy's finding.
    await flipByte(blobFile(offsite, rotted.sha256), 0);
    const both = await backup.verify(first);
    expect(both.ok).toBe(false);
    expect(both.problems).toEqual([
      expect.objectContaining({ path: rotted.path, detail: expect.stringContaining(`${offsite}: `) }),
    ]);
    expect(await codeOfRestore(join(root, 'refused'))).toBe('CG_BACKUP_CORRUPT');
    await flipByte(blobFile(offsite, rotted.sha256), 0);
    await store.settled(); // starts the report afresh

    const target = join(root, 'restored');
    await rocksdbBackup({ repository: store, db: target }).restore({ id: first });
    expect(await scan(target)).toBe(firstScan);
    expect((await store.settled()).fallbacks.sort()).toEqual([rotted.sha256, lost.sha256].sort());
  });

  it('still lists and restores every backup when the local copy is lost entirely', async () => {
    await rm(local, { recursive: true, force: true });
    const fresh = mirroredBlobStore(localBlobStore(local), localBlobStore(offsite));
    const again = rocksdbBackup({ repository: fresh, db: join(root, 'after-loss') });
    expect((await again.list()).map((b) => [b.id, b.damaged])).toEqual([
      [expect.any(String), undefined],
      [first, undefined],
    ]);
    await again.restore({ id: first });
    expect(await scan(join(root, 'after-loss'))).toBe(firstScan);
    expect((await fresh.settled()).fallbacks.length).toBeGreaterThan(0);
  });

  it('reports an offsite copy that failed, never lists it offsite half copied, and copies it on the next sync', async () => {
    const flakyDir = join(root, 'flaky');
    const offsiteStore = localBlobStore(flakyDir);
    let failures = 1;
    const flaky: BlobStore = {
      ...offsiteStore,
      async putStream(source, io) {
        if (failures-- > 0) throw new Error('the bucket answered 503');
        return offsiteStore.putStream(source, io);
      },
    };
    const mirror = mirroredBlobStore(localBlobStore(join(root, 'local-2')), flaky);
    const b = rocksdbBackup({ repository: mirror, db });
    const { id } = await b.create({ reason: 'manual' });
    const report = await mirror.settled();
    expect(report.copied).toEqual([]);
    expect(report.failed).toEqual([{ id, error: expect.stringContaining('503') }]);
    expect(await offsiteStore.readDoc(`backups/${id}/manifest.json`)).toBeUndefined();
    expect(await mirror.sync()).toMatchObject({ copied: [id], failed: [] });
    expect((await b.verify(id)).copies?.map((c) => c.ok)).toEqual([true, true]);
  });
});
