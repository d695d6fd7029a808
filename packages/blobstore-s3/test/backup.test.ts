import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { type BackupManifest, rocksdbBackup } from '@codegraph/backup-rocksdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type S3BlobStore, s3BlobStore } from '../src/index.js';
import { fillDatabase, scan, tempDirs, treeDigest } from './helpers.js';
import { type Swift, startSwift } from './swift.js';

let swift: Swift;
const tmp = tempDirs();
const stores: S3BlobStore[] = [];
beforeAll(async () => {
  swift = await startSwift();
}, 150_000);
afterAll(async () => {
  for (const s of stores) s.close();
  await swift?.stop();
});

const storeFor = (bucket: string) => {
  const s = s3BlobStore({
    bucket,
    prefix: 'codegraph/',
    endpoint: swift.endpoint,
    region: swift.region,
    credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey },
    leaseSettleMs: 1_000,
  });
  stores.push(s);
  return s;
};

const manifestOf = async (store: S3BlobStore, id: string) =>
  JSON.parse(
    Buffer.from((await store.readDoc(`backups/${id}/manifest.json`)) ?? []).toString(),
  ) as BackupManifest;

const objectKey = (sha256: string) => `codegraph/blobs/sha256/${sha256.slice(0, 2)}/${sha256}`;

describe('rocksdbBackup on an S3 bucket', () => {
  it('takes a full then an incremental backup, verifies, restores byte-identical (by id and point in time) and prunes', async () => {
    const root = await tmp('cycle');
    const db = join(root, 'rocksdb');
    await fillDatabase(db, { num: 20_000, seed: 7 });
    const store = storeFor(await swift.bucket());
    const backup = rocksdbBackup({ repository: store, db });

    const full = await backup.create({ reason: 'scheduled' });
    const fullTraffic = store.traffic().uploadedBytes;
    expect(fullTraffic).toBeGreaterThanOrEqual(full.sizeBytes);
    const before = await scan(db);
    const sourceAtFull = await treeDigest(db);

    await fillDatabase(db, { num: 20_000, writes: 4_000, seed: 8 });
    const incremental = await backup.create({ reason: 'scheduled' });
    const m1 = await manifestOf(store, full.id);
    const m2 = await manifestOf(store, incremental.id);
    const old = new Set(m1.files.map((f) => f.sha256));
    const fresh = m2.files.filter((f) => !old.has(f.sha256));
    const newBytes = fresh.reduce((n, f) => n + f.size, 0);
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.length).toBeLessThan(m2.files.length);
    // Only the blobs the bucket lacked were sent (plus the manifest documents).
    expect(m2.metadata.writtenBytes).toBe(newBytes);
    expect(store.traffic().uploadedBytes - fullTraffic).toBeLessThan(newBytes * 1.1 + 64_000);

    for (const b of [full, incremental]) {
      const v = await backup.verify(b.id, { level: 'checksum' });
      expect(v, b.id).toMatchObject({ ok: true, problems: [] });
    }

    // Restore the newest into a fresh directory: every file byte for byte as the database has it.
    const restoredDir = join(root, 'restored');
    await rocksdbBackup({ repository: store, db: restoredDir }).restore({ id: incremental.id });
    const source = await treeDigest(db);
    const restored = await treeDigest(restoredDir);
    expect(Object.keys(restored).length).toBe(m2.files.length);
    for (const [path, digest] of Object.entries(restored)) expect(digest, path).toBe(source[path]);
    expect(await scan(restoredDir)).toBe(await scan(db));

    // Point in time: just before the second backup gives the first, as it was.
    const pitDir = join(root, 'pit');
    const r = await rocksdbBackup({ repository: store, db: pitDir }).restore({
      at: new Date(Date.parse(incremental.createdAt) - 1),
    });
    expect(r.id).toBe(full.id);
    for (const [path, digest] of Object.entries(await treeDigest(pitDir)))
      expect(digest, path).toBe(sourceAtFull[path]);
    expect(await scan(pitDir)).toBe(before);

    // Retention: keep the newest; blobs only the first referenced are collected, nothing the second needs.
    const pruned = await backup.prune({ keepLast: 1 });
    expect(pruned.removed).toEqual([full.id]);
    const left = new Set<string>();
    for await (const b of store.listBlobs()) left.add(b.sha256);
    expect(left).toEqual(new Set(m2.files.map((f) => f.sha256)));
    expect(await store.listDocs('backups')).toEqual(
      [
        `backups/${incremental.id}/SHA256SUMS`,
        `backups/${incremental.id}/manifest.hmac`,
        `backups/${incremental.id}/manifest.json`,
        `backups/${incremental.id}/verification.json`,
      ].sort(),
    );
    expect((await backup.verify(incremental.id)).ok).toBe(true);
  });

  it('finds an object changed or deleted in the bucket, names the file, and refuses to restore it over live data', async () => {
    const root = await tmp('tamper');
    const db = join(root, 'rocksdb');
    await fillDatabase(db, { num: 12_000, seed: 9 });
    const bucket = await swift.bucket();
    const store = storeFor(bucket);
    const backup = rocksdbBackup({ repository: store, db });
    const { id } = await backup.create({ reason: 'manual' });
    const m = await manifestOf(store, id);
    const ssts = m.files.filter((f) => f.path.endsWith('.sst')).sort((a, b) => b.size - a.size);
    const [changed, deleted] = ssts as [BackupManifest['files'][number], BackupManifest['files'][number]];
    const live = await treeDigest(db);
    const liveEntries = async () => (await readdir(root)).sort();
    const entriesBefore = await liveEntries();

    // Same size, one byte different: only a checksum finds it.
    const got = await swift.client.send(
      new GetObjectCommand({ Bucket: bucket, Key: objectKey(changed.sha256) }),
    );
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0x01;
    await swift.client.send(
      new PutObjectCommand({ Bucket: bucket, Key: objectKey(changed.sha256), Body: bytes }),
    );

    const v1 = await backup.verify(id, { level: 'checksum' });
    expect(v1.ok).toBe(false);
    expect(v1.problems).toEqual([expect.objectContaining({ path: changed.path, problem: 'checksum' })]);
    await expect(backup.restore({ id })).rejects.toMatchObject({
      code: 'CG_BACKUP_CORRUPT',
      message: expect.stringContaining(changed.path),
    });
    expect(await treeDigest(db)).toEqual(live);
    expect(await liveEntries()).toEqual(entriesBefore);

    await swift.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey(deleted.sha256) }));
    const v2 = await backup.verify(id, { level: 'presence' });
    expect(v2.problems).toEqual([expect.objectContaining({ path: deleted.path, problem: 'missing' })]);
    await expect(backup.restore({ id })).rejects.toMatchObject({
      code: 'CG_BACKUP_CORRUPT',
      message: expect.stringContaining(deleted.path),
    });
    expect(await treeDigest(db)).toEqual(live);
    expect(await liveEntries()).toEqual(entriesBefore);
  });
});
