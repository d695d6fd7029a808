import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import {
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../src/client.js';
import { s3BlobStore } from '../src/index.js';
import { uploadFile } from '../src/objects.js';
import { resolveS3Options, type S3BlobStoreOptions } from '../src/options.js';
import { recordingLogger, tempDirs } from './helpers.js';
import { type Swift, startSwift } from './swift.js';

let swift: Swift;
const tmp = tempDirs();
beforeAll(async () => {
  swift = await startSwift();
}, 150_000);
afterAll(async () => {
  await swift?.stop();
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const options = (bucket: string, more: Partial<S3BlobStoreOptions> = {}): S3BlobStoreOptions => ({
  bucket,
  endpoint: swift.endpoint,
  region: swift.region,
  credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey },
  ...more,
});
const collect = async (it: AsyncIterable<Uint8Array>) => {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
};

describe('s3BlobStore on a Swift bucket (SigV4, s3api)', () => {
  it('is refused with a wrong secret key, and the secret appears in no error or log line', async () => {
    const bucket = await swift.bucket();
    const logger = recordingLogger();
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const store = s3BlobStore(
      options(bucket, { credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: wrong }, logger }),
    );
    const err = await store.readDoc('backups/x/manifest.json').then(
      () => undefined,
      (e: unknown) => e,
    );
    await expect(store.statBlob('0'.repeat(64))).rejects.toThrow(/HTTP 403.*check the credentials/);
    store.close();
    expect(err).toMatchObject({ code: 'CG_BACKUP_FAILED' });
    expect(String((err as Error).message)).toMatch(/SignatureDoesNotMatch.*secret key was refused/);
    const everything = `${JSON.stringify(err)} ${(err as Error).message} ${(err as Error).stack} ${logger.lines.join('\n')} ${store.location} ${JSON.stringify(store)}`;
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(swift.secretAccessKey);

    // Retries are logged (an endpoint that refuses connections), and still without the secret.
    const closed = s3BlobStore({
      ...options(bucket, { credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: wrong }, logger }),
      endpoint: 'http://127.0.0.1:9',
      attempts: 2,
    });
    const down = await closed.readDoc('backups/x/manifest.json').catch((e: Error) => e);
    closed.close();
    expect(down).toMatchObject({ code: 'CG_BACKUP_FAILED', retryable: true });
    expect(logger.lines.join('\n')).toMatch(/retrying/);
    expect(`${logger.lines.join('\n')} ${JSON.stringify(down)} ${(down as Error).message}`).not.toContain(
      wrong,
    );
  });

  it('takes credentials from the standard AWS chain (environment) when none are passed', async () => {
    const bucket = await swift.bucket();
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = swift.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = swift.secretAccessKey;
    try {
      const store = s3BlobStore({ bucket, endpoint: swift.endpoint, region: swift.region });
      await store.writeDoc('backups/x/manifest.json', '{}');
      expect(await store.listDocs('backups')).toEqual(['backups/x/manifest.json']);
      store.close();
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
    }
  });

  it('rejects bad options before any request, without echoing a key in the endpoint', () => {
    expect(() => s3BlobStore({ bucket: 'No_Such' })).toThrow(
      expect.objectContaining({ code: 'CG_CONFIG_INVALID' }),
    );
    expect(() => s3BlobStore({ bucket: 'ok-bucket', prefix: '../up/' })).toThrow(/prefix/);
    const e = (() => {
      try {
        s3BlobStore({ bucket: 'ok-bucket', endpoint: 'http://AKIA:hunter2secret@127.0.0.1:9' });
      } catch (err) {
        return err as Error;
      }
    })();
    expect(e?.message).toMatch(/must not carry credentials/);
    expect(e?.message).not.toContain('hunter2secret');
    expect(() => s3BlobStore({ bucket: 'ok-bucket', partSize: 1024 })).toThrow(/partSize/);
  });

  it('stores a file by content, reads it back byte for byte, deduplicates, lists and removes it', async () => {
    const bucket = await swift.bucket();
    const dir = await tmp('put');
    const bytes = randomBytes(300_000);
    await writeFile(join(dir, 'a.sst'), bytes);
    const store = s3BlobStore(options(bucket, { prefix: 'prod/' }));
    const first = await store.putFile(join(dir, 'a.sst'));
    expect(first).toEqual({ sha256: sha(bytes), size: bytes.length, written: true });
    expect(await store.statBlob(first.sha256)).toBe(bytes.length);
    expect((await collect(store.readBlob(first.sha256))).equals(bytes)).toBe(true);
    const again = await store.putFile(join(dir, 'a.sst'));
    expect(again.written).toBe(false);
    const listed: Array<{ sha256: string; size: number }> = [];
    for await (const b of store.listBlobs()) listed.push(b);
    expect(listed).toEqual([{ sha256: first.sha256, size: bytes.length }]);
    // Under the prefix, at its content address.
    await swift.client.send(
      new HeadObjectCommand({
        Bucket: bucket,
        Key: `prod/blobs/sha256/${first.sha256.slice(0, 2)}/${first.sha256}`,
      }),
    );
    await store.removeBlob(first.sha256);
    expect(await store.statBlob(first.sha256)).toBeUndefined();
    const fromStream = await store.putStream(
      (async function* () {
        yield bytes.subarray(0, 1000);
        yield bytes.subarray(1000);
      })(),
    );
    expect(fromStream).toEqual(first);
    store.close();
  });

  it('uploads a large file in parts and restores it byte-identical', async () => {
    const bucket = await swift.bucket();
    const dir = await tmp('multipart');
    const bytes = randomBytes(12 * 1024 * 1024 + 12_345);
    await writeFile(join(dir, 'big.sst'), bytes);
    const store = s3BlobStore(options(bucket, { multipartThreshold: 5 << 20, partSize: 5 << 20 }));
    const put = await store.putFile(join(dir, 'big.sst'));
    expect(put).toEqual({ sha256: sha(bytes), size: bytes.length, written: true });
    // Three parts, each sent once: the body and its read-back, nothing buffered twice.
    expect(store.traffic().uploadedBytes).toBeGreaterThanOrEqual(bytes.length);
    expect(store.traffic().uploadedBytes).toBeLessThan(bytes.length + 64_000);
    expect(store.traffic().downloadedBytes).toBeGreaterThanOrEqual(bytes.length);
    expect((await collect(store.readBlob(put.sha256))).equals(bytes)).toBe(true);
    expect(await store.statBlob(put.sha256)).toBe(bytes.length);
    store.close();
  });

  it('has the server refuse a body or a part that differs from the SHA-256 it was signed with', async () => {
    const bucket = await swift.bucket();
    const dir = await tmp('baddigest');
    await writeFile(join(dir, 'f'), randomBytes(4096));
    const o = resolveS3Options(options(bucket, { attempts: 1 }));
    const conn = connect(o);
    const c = { o, conn, url: `s3://${bucket}/` };
    await expect(uploadFile(c, 'k', join(dir, 'f'), { sha256: 'a'.repeat(64), size: 4096 })).rejects.toThrow(
      /BadDigest|XAmzContentSHA256Mismatch/,
    );
    // A part of a multipart upload is checked the same way; the failed upload is aborted, nothing is left.
    const big = randomBytes(6 << 20);
    await writeFile(join(dir, 'big'), big);
    const parts = [sha(big.subarray(0, 5 << 20)), 'b'.repeat(64)];
    await expect(
      uploadFile(c, 'm', join(dir, 'big'), {
        sha256: sha(big),
        size: big.length,
        partSize: 5 << 20,
        parts,
        multipart: true,
      }),
    ).rejects.toThrow(/BadDigest|XAmzContentSHA256Mismatch/);
    expect(
      (await swift.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [],
    ).toEqual([]);
    conn.destroy();
    const store = s3BlobStore(options(bucket));
    expect(await store.listDocs('k').catch(() => [])).toEqual([]);
    store.close();
  });

  it('replaces a damaged blob found at the content address instead of reusing it', async () => {
    const bucket = await swift.bucket();
    const dir = await tmp('heal');
    const bytes = randomBytes(50_000);
    await writeFile(join(dir, 'f'), bytes);
    const digest = sha(bytes);
    const rotten = Buffer.from(bytes);
    rotten[100] = (rotten[100] ?? 0) ^ 0xff;
    await swift.client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `blobs/sha256/${digest.slice(0, 2)}/${digest}`,
        Body: rotten,
      }),
    );
    const logger = recordingLogger();
    const store = s3BlobStore(options(bucket, { logger }));
    expect((await store.putFile(join(dir, 'f'))).written).toBe(true);
    expect((await collect(store.readBlob(digest))).equals(bytes)).toBe(true);
    expect(logger.lines.join('\n')).toMatch(/damaged; uploading it again/);
    store.close();
  });

  it('writes, reads, lists and removes documents, and refuses keys outside the repository', async () => {
    const bucket = await swift.bucket();
    const store = s3BlobStore(options(bucket, { prefix: 'a/b/' }));
    await store.writeDoc('backups/1/manifest.json', '{"x":1}');
    await store.writeDoc('backups/1/SHA256SUMS', new Uint8Array([65, 10]));
    await store.writeDoc('backups/2/manifest.json', '{}');
    expect(Buffer.from((await store.readDoc('backups/1/manifest.json')) ?? []).toString()).toBe('{"x":1}');
    expect(await store.readDoc('backups/3/manifest.json')).toBeUndefined();
    expect(await store.listDocs('backups')).toEqual([
      'backups/1/SHA256SUMS',
      'backups/1/manifest.json',
      'backups/2/manifest.json',
    ]);
    await store.removeDoc('backups/1/manifest.json');
    expect(await store.listDocs('backups/')).toEqual(['backups/1/SHA256SUMS', 'backups/2/manifest.json']);
    await expect(store.writeDoc('../escape', 'x')).rejects.toMatchObject({ code: 'CG_CONFIG_INVALID' });
    await expect(store.readDoc('LOCK')).rejects.toMatchObject({ code: 'CG_CONFIG_INVALID' });
    await expect(store.statBlob('nothex')).rejects.toMatchObject({ code: 'CG_CONFIG_INVALID' });
    store.close();
  });

  it('aborts the parts of an upload that never completed when cleaning up', async () => {
    const bucket = await swift.bucket();
    const key = `blobs/sha256/ab/${'ab'.repeat(32)}`;
    const { UploadId } = await swift.client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }),
    );
    await swift.client.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        PartNumber: 1,
        Body: randomBytes(6 << 20),
      }),
    );
    const store = s3BlobStore(options(bucket));
    expect(await store.cleanTemporary()).toBe(6 << 20);
    const left = await swift.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    expect(left.Uploads ?? []).toEqual([]);
    store.close();
  });
});

describe('the repository lease on a bucket', () => {
  it('has one holder at a time; release lets the next one in', async () => {
    const bucket = await swift.bucket();
    const a = s3BlobStore(options(bucket, { leaseSettleMs: 500 }));
    const b = s3BlobStore(options(bucket, { leaseSettleMs: 500 }));
    const release = await a.lock();
    await expect(b.lock()).rejects.toMatchObject({ code: 'CG_BACKUP_FAILED', retryable: true });
    await expect(b.lock()).rejects.toThrow(new RegExp(`in use .*pid ${process.pid} on ${hostname()}`));
    await release();
    const again = await b.lock();
    await again();
    a.close();
    b.close();
  });

  it('of contenders racing for a free lease, never two win, and the lease is free again after', async () => {
    const bucket = await swift.bucket();
    const stores = Array.from({ length: 4 }, () => s3BlobStore(options(bucket, { leaseSettleMs: 1_000 })));
    for (let round = 0; round < 2; round++) {
      const results = await Promise.allSettled(stores.map((s) => s.lock()));
      const won = results.filter((r) => r.status === 'fulfilled');
      // A contender whose write was slow backs off rather than risk a second holder, so zero is possible.
      expect(won.length).toBeLessThanOrEqual(1);
      for (const r of results)
        if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'CG_BACKUP_FAILED' });
      for (const w of won) await (w as PromiseFulfilledResult<() => Promise<void>>).value();
    }
    const release = await stores[0]!.lock();
    await release();
    for (const s of stores) s.close();
  });

  it('is taken over when its holder died on this host, or when it expired', async () => {
    const bucket = await swift.bucket();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(String(dead.stdout));
    const record = (pid: number, host: string) =>
      JSON.stringify({ token: 'x', pid, host, since: new Date().toISOString(), ttlMs: 3_000 });
    await swift.client.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'LOCK', Body: record(deadPid, hostname()) }),
    );
    const store = s3BlobStore(options(bucket, { leaseSettleMs: 500, leaseTtlMs: 3_000 }));
    const release = await store.lock();
    await release();
    // A live holder elsewhere: refused until its lease is older than its ttl by the server's clock.
    await swift.client.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'LOCK', Body: record(1, 'other-host') }),
    );
    await expect(store.lock()).rejects.toMatchObject({ code: 'CG_BACKUP_FAILED' });
    await new Promise((r) => setTimeout(r, 5_500));
    const later = await store.lock();
    await later();
    store.close();
  });

  it('stops committing documents once its lease was taken by someone else', async () => {
    const bucket = await swift.bucket();
    const store = s3BlobStore(options(bucket, { leaseSettleMs: 500 }));
    const release = await store.lock();
    await store.writeDoc('backups/1/SHA256SUMS', 'x');
    await swift.client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'LOCK',
        Body: JSON.stringify({ token: 'thief', pid: 1, host: 'other', since: '', ttlMs: 60_000 }),
      }),
    );
    await expect(store.writeDoc('backups/1/manifest.json', '{}')).rejects.toThrow(/lease .* was lost/);
    expect(await store.readDoc('backups/1/manifest.json')).toBeUndefined();
    await release();
    // The thief's lease is left alone.
    expect(await store.lock().catch((e: Error) => e.message)).toMatch(/in use/);
    store.close();
  });
});
