import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
} from '@aws-sdk/client-s3';
import {
  type BlobIoOptions,
  type BlobStore,
  type BlobWrite,
  checkBlobName,
  checkDocKey,
  checkedBlob,
} from '@codegraph/backup-rocksdb';
import { BackupFailedError, ConfigInvalidError, ReleaseError } from '@codegraph/release-core';
import { connect, isNotFound, type S3Traffic, withRetry } from './client.js';
import { acquireLease, type HeldLease } from './lease.js';
import { hashFileParts, type PartedDigest, partSizeFor, readBackRanges } from './multipart.js';
import { type Ctx, deleteObject, getSmall, headSize, putSmall, readObject, uploadFile } from './objects.js';
import { resolveS3Options, type S3BlobStoreOptions } from './options.js';

/**
 * A {@link BlobStore} on an S3-compatible bucket, with what the local store does not need.
 *
 * @example
 * ```ts
 * const store = s3BlobStore({ bucket: 'codegraph-backups' })
 * console.log(store.traffic().uploadedBytes)
 * store.close()
 * ```
 */
export interface S3BlobStore extends BlobStore {
  /** Bytes and requests sent so far (every attempt counts). */
  traffic(): S3Traffic;
  /** Closes the keep-alive connections. */
  close(): void;
}

const SHA256 = /^[0-9a-f]{64}$/;
const DOC_KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;
const DEFAULT_CHUNK = 1 << 20;

/** A GET that failed because the object is not there (the SDK's error, or ours wrapping it after retries). */
const objectMissing = (err: unknown): boolean =>
  isNotFound(err) || (err instanceof ReleaseError && err.details?.['status'] === 404);

async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++] as T);
  });
  await Promise.all(workers);
}

/**
 * The backup repository on any S3-compatible store (AWS S3, GCS interoperability, Ceph, Swift, MinIO...):
 * blobs under `<prefix>blobs/sha256/ab/<sha256>`, documents under `<prefix><key>`, a lease at `<prefix>LOCK`.
 *
 * - A blob is hashed locally, uploaded with its SHA-256 signed (the server refuses other bytes), then read
 *   back and hashed again; only then does `putFile` return. A blob whose read-back differs is deleted.
 * - A blob already in the bucket is read back and hashed before it is reused; a damaged one is replaced.
 * - Documents (manifests) are written whole by one PUT and read back byte for byte; while the repository
 *   lease is held, its token is checked before each document is written.
 * - Requests use keep-alive sockets and checksums only when the API requires them (custom endpoints).
 *
 * @example
 * ```ts
 * import { rocksdbBackup } from '@codegraph/backup-rocksdb'
 * import { s3BlobStore } from '@codegraph/blobstore-s3'
 *
 * const backup = rocksdbBackup({
 *   repository: s3BlobStore({ bucket: 'codegraph-backups', prefix: 'production/', region: 'eu-central-1' }),
 *   db: '/opt/codegraph/data/rocksdb',
 * })
 * ```
 */
export function s3BlobStore(options: S3BlobStoreOptions): S3BlobStore {
  const o = resolveS3Options(options);
  const conn = connect(o);
  const url = `s3://${o.bucket}/${o.prefix}`;
  const c: Ctx = { o, conn, url: `s3://${o.bucket}/` };
  // Names are checked before any I/O, the same way every BlobStore checks them (CG_CONFIG_INVALID).
  const blobKey = (sha256: string) =>
    `${o.prefix}blobs/sha256/${sha256.slice(0, 2)}/${checkBlobName(sha256)}`;
  const docKey = (key: string) => {
    if (checkDocKey(key) === 'LOCK') {
      throw new ConfigInvalidError('LOCK is the repository lease, not a document', {
        plugin: 'blobstore-s3',
      });
    }
    return `${o.prefix}${key}`;
  };
  let lease: HeldLease | undefined;

  const listKeys = async function* (prefix: string) {
    let token: string | undefined;
    do {
      const page = await withRetry(o, 'ListObjectsV2', c.url + prefix, () =>
        conn.client.send(
          new ListObjectsV2Command({
            Bucket: o.bucket,
            Prefix: prefix,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        ),
      );
      for (const item of page.Contents ?? []) {
        if (item.Key !== undefined) yield { key: item.Key, size: item.Size ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  };

  /** Stores a local file whose digest is known; the blob is read back before this returns. */
  const putKnown = async (path: string, digest: PartedDigest, signal?: AbortSignal): Promise<BlobWrite> => {
    const key = blobKey(digest.sha256);
    if ((await headSize(c, key, signal)) === digest.size) {
      if ((await readBackRanges(c, key, digest, signal)) === undefined) {
        return { sha256: digest.sha256, size: digest.size, written: false };
      }
      o.logger.warn('blobstore-s3: a stored blob is damaged; uploading it again', { object: c.url + key });
    }
    await uploadFile(c, key, path, digest, signal);
    const problem = await readBackRanges(c, key, digest, signal);
    if (problem !== undefined) {
      await deleteObject(c, key);
      throw new BackupFailedError(
        `S3 read-back of ${c.url}${key} gave ${problem}, expected ${digest.size} bytes with sha256 ${digest.sha256}; ` +
          'the object was deleted and nothing refers to it',
        { plugin: 'blobstore-s3', retryable: true, details: { object: c.url + key } },
      );
    }
    return { sha256: digest.sha256, size: digest.size, written: true };
  };

  const store: S3BlobStore = {
    location: o.endpoint ? `${url} (${o.endpoint})` : url,
    async statBlob(sha256) {
      return headSize(c, blobKey(sha256));
    },
    async putFile(path, io: BlobIoOptions = {}) {
      const { size } = await stat(path);
      const digest = await hashFileParts(path, {
        chunkSize: io.chunkSize ?? DEFAULT_CHUNK,
        partSize: partSizeFor(size, o.partSize),
        multipart: size >= o.multipartThreshold,
        signal: io.signal,
      });
      return putKnown(path, digest, io.signal);
    },
    async putStream(source, io: BlobIoOptions = {}) {
      // The content address is known only at the end: spool to a private local file, then store that.
      const dir = await mkdtemp(join(tmpdir(), 'cg-s3-spool-'));
      try {
        const file = join(dir, 'blob');
        await pipeline(source, createWriteStream(file, { mode: 0o600 }), { signal: io.signal });
        return await store.putFile(file, io);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    readBlob(sha256, io: BlobIoOptions = {}) {
      // Nothing read back is trusted: hashed on the way through; an absent object is a missing blob.
      const key = blobKey(sha256);
      return checkedBlob(sha256, c.url + key, readObject(c, key, io.signal), objectMissing);
    },
    async *listBlobs() {
      const base = `${o.prefix}blobs/sha256/`;
      for await (const { key, size } of listKeys(base)) {
        const name = key.slice(key.lastIndexOf('/') + 1);
        if (SHA256.test(name) && key === blobKey(name)) yield { sha256: name, size };
      }
    },
    async removeBlob(sha256) {
      // Garbage collection under a lease that was lost could delete what the new holder just stored.
      await lease?.check(o.leaseSettleMs);
      await deleteObject(c, blobKey(sha256));
    },
    async readDoc(key) {
      return (await getSmall(c, docKey(key)))?.body;
    },
    async writeDoc(key, data) {
      const target = docKey(key);
      const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
      await lease?.check();
      await putSmall(c, target, body);
      const back = await getSmall(c, target);
      if (!back || !Buffer.from(back.body).equals(body)) {
        throw new BackupFailedError(`S3 read-back of ${c.url}${target} differs from what was written`, {
          plugin: 'blobstore-s3',
          retryable: true,
          details: { object: c.url + target },
        });
      }
    },
    async listDocs(prefix) {
      const base = prefix.replace(/\/+$/, '');
      docKey(base);
      const out: string[] = [];
      for await (const { key } of listKeys(`${o.prefix}${base}/`)) {
        const rel = key.slice(o.prefix.length);
        if (DOC_KEY.test(rel)) out.push(rel);
      }
      return out.sort();
    },
    async removeDoc(key) {
      await lease?.check(o.leaseSettleMs);
      await deleteObject(c, docKey(key));
    },
    async lock() {
      if (lease)
        throw new BackupFailedError(`${url} is already locked by this store`, { plugin: 'blobstore-s3' });
      const held = await acquireLease(c, `${o.prefix}LOCK`);
      lease = held;
      return async () => {
        if (lease === held) lease = undefined;
        await held.release();
      };
    },
    async cleanTemporary() {
      // Multipart uploads a killed backup never completed: invisible, but their parts take space.
      let freed = 0;
      let marker: { KeyMarker?: string; UploadIdMarker?: string } = {};
      const stale: Array<{ key: string; id: string }> = [];
      for (;;) {
        const page = await withRetry(o, 'ListMultipartUploads', url, () =>
          conn.client.send(
            new ListMultipartUploadsCommand({ Bucket: o.bucket, Prefix: o.prefix, ...marker }),
          ),
        );
        for (const u of page.Uploads ?? [])
          if (u.Key && u.UploadId) stale.push({ key: u.Key, id: u.UploadId });
        if (!page.IsTruncated) break;
        marker = {
          ...(page.NextKeyMarker ? { KeyMarker: page.NextKeyMarker } : {}),
          ...(page.NextUploadIdMarker ? { UploadIdMarker: page.NextUploadIdMarker } : {}),
        };
      }
      await mapLimit(stale, 4, async ({ key, id }) => {
        const parts = await withRetry(o, 'ListParts', c.url + key, () =>
          conn.client.send(new ListPartsCommand({ Bucket: o.bucket, Key: key, UploadId: id })),
        ).catch(() => undefined);
        for (const p of parts?.Parts ?? []) freed += p.Size ?? 0;
        await withRetry(o, 'AbortMultipartUpload', c.url + key, () =>
          conn.client.send(new AbortMultipartUploadCommand({ Bucket: o.bucket, Key: key, UploadId: id })),
        );
      });
      if (stale.length > 0)
        o.logger.info('blobstore-s3: aborted unfinished uploads', { uploads: stale.length, freed });
      return freed;
    },
    traffic: () => ({ ...conn.traffic }),
    close: () => conn.destroy(),
  };
  return store;
}
