import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import {
  type BackupManifest,
  localBlobStore,
  type MirroredBlobStore,
  mirroredBlobStore,
  type RocksdbBackup,
  rocksdbBackup,
} from '@codegraph/backup-rocksdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type S3BlobStore, s3BlobStore } from '../src/index.js';
import { fillDatabase, scan, tempDirs, treeDigest } from './helpers.js';
import { type Swift, startSwift } from './swift.js';

// Local + offsite: backups land in a local repository and are copied to the bucket in the background;
// restores read the local copy and fall back to the bucket. One Swift for the file.
let swift: Swift;
let offsite: S3BlobStore | undefined;
const tmp = tempDirs();
beforeAll(async () => {
  swift = await startSwift();
}, 150_000);
afterAll(async () => {
  offsite?.close();
  await swift?.stop();
});

/** GET requests the store sent for blob objects (documents and the lease are not counted). */
const blobGets = { count: 0 };

function countingClient(): S3Client {
  const client = new S3Client({
    endpoint: swift.endpoint,
    region: swift.region,
    forcePathStyle: true,
    credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const key = (args.input as { Key?: string }).Key ?? '';
      if (context.commandName === 'GetObjectCommand' && key.includes('/blobs/sha256/')) blobGets.count++;
      return next(args);
    },
    { step: 'initialize', name: 'countBlobGets' },
  );
  return client;
}

describe('local + offsite: mirroredBlobStore(localBlobStore, s3BlobStore) behind rocksdbBackup', () => {
  let root: string;
  let db: string;
  let local: string;
  let store: MirroredBlobStore;
  let backup: RocksdbBackup;
  let id: string;
  let manifest: BackupManifest;
  let sourceAtBackup: Record<string, string>;
  let scanAtBackup: string;

  beforeAll(async () => {
    root = await tmp('offsite');
    db = join(root, 'rocksdb');
    local = join(root, 'local');
    await fillDatabase(db, { num: 20_000, seed: 41 });
    offsite = s3BlobStore({
      bucket: await swift.bucket(),
      prefix: 'offsite/',
      endpoint: swift.endpoint,
      region: swift.region,
      client: countingClient(),
      leaseSettleMs: 200,
    });
    store = mirroredBlobStore(localBlobStore(local), offsite);
    backup = rocksdbBackup({ repository: store, db });
  });

  /** Restores the backup into a fresh directory; every file must be byte-identical to the source. */
  async function restoreAndCompare(label: string): Promise<void> {
    const target = join(root, label);
    await rocksdbBackup({ repository: store, db: target }).restore({ id });
    const restored = await treeDigest(target);
    // Manifest paths name the component (`rocksdb/000012.sst`); the restored tree is the database itself.
    const expected = Object.fromEntries(
      manifest.files.map((f) => [f.path.replace(/^rocksdb\//, ''), f.sha256]),
    );
    expect(restored).toEqual(expected);
    for (const [path, digest] of Object.entries(restored)) expect(digest, path).toBe(sourceAtBackup[path]);
    expect(await scan(target)).toBe(scanAtBackup);
  }

  it('lands a backup locally, copies it to the bucket in the background (manifest last), and verify reports both copies', async () => {
    scanAtBackup = await scan(db);
    sourceAtBackup = await treeDigest(db);
    id = (await backup.create({ reason: 'scheduled' })).id;
    const report = await store.settled();
    expect(report).toMatchObject({ copied: [id], failed: [], fallbacks: [] });
    const local_ = localBlobStore(local);
    manifest = JSON.parse(
      Buffer.from((await local_.readDoc(`backups/${id}/manifest.json`)) ?? []).toString(),
    ) as BackupManifest;
    const bucket = offsite as S3BlobStore;
    // The bucket holds the same manifest and every blob at its size.
    expect(Buffer.from((await bucket.readDoc(`backups/${id}/manifest.json`)) ?? []).toString()).toBe(
      Buffer.from((await local_.readDoc(`backups/${id}/manifest.json`)) ?? []).toString(),
    );
    const blobs = new Map(manifest.files.map((f) => [f.sha256, f.size]));
    expect(report.blobsCopied).toBe(blobs.size);
    for (const [sha256, size] of blobs) expect(await bucket.statBlob(sha256), sha256).toBe(size);

    const v = await backup.verify(id, { level: 'checksum' });
    expect(v).toMatchObject({ ok: true, problems: [] });
    expect(v.copies?.map((c) => [c.location, c.ok, c.problems.length])).toEqual([
      [local, true, 0],
      [bucket.location, true, 0],
    ]);
    expect(await store.sync()).toMatchObject({ copied: [], blobsCopied: 0, failed: [] });
  });

  it('restores from the local copy while it is intact: not one blob GET to the bucket', async () => {
    blobGets.count = 0;
    await restoreAndCompare('restored-local');
    expect(blobGets.count).toBe(0);
    expect((await store.settled()).fallbacks).toEqual([]);
  });

  it('falls back to the bucket when the local blobs are gone, and restores byte-identical', async () => {
    await rm(join(local, 'blobs'), { recursive: true, force: true });
    blobGets.count = 0;
    await restoreAndCompare('restored-offsite');
    const distinct = new Set(manifest.files.map((f) => f.sha256));
    expect(blobGets.count).toBeGreaterThanOrEqual(distinct.size);
    expect(new Set((await store.settled()).fallbacks)).toEqual(distinct);
  });
});
