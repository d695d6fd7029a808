import { createHash } from 'node:crypto';
import { BackupCorruptError, ConfigInvalidError } from '@codegraph/release-core';
import type { Digest } from './utils/fs.js';

/**
 * The result of storing a blob.
 *
 * @example
 * ```ts
 * const { sha256, size, written } = await store.putFile('/srv/ckpt/000012.sst')
 * ```
 */
export interface BlobWrite extends Digest {
  /** False when a blob with the same content was already stored (deduplicated: nothing new). */
  written: boolean;
}

/**
 * Options of the blob store's streaming calls.
 *
 * @example
 * ```ts
 * for await (const chunk of store.readBlob(sha256, { chunkSize: 4 << 20, signal })) hash.update(chunk)
 * ```
 */
export interface BlobIoOptions {
  signal?: AbortSignal | undefined;
  /** Read size. @default 1048576 (1 MiB) */
  chunkSize?: number;
}

/**
 * Options of {@link BlobStore.writeDoc}.
 *
 * @example
 * ```ts
 * await store.writeDoc('keys/manifest-hmac', key, { private: true }) // mode 0600 on a local disk
 * ```
 */
export interface DocWriteOptions {
  /** A secret (the repository's manifest key): readable by its owner only. @default false */
  private?: boolean;
}

/**
 * Where a backup repository keeps its bytes: content-addressed blobs (named by their SHA-256) and a few
 * small documents (manifests). The repository logic sits on top, so a remote store (S3-compatible) plugs in
 * by implementing these calls, and proves it with `testBlobStore()` from `@codegraph/backup-rocksdb/testing`.
 *
 * The contract every store keeps:
 * - every write is atomic: a reader sees a whole blob or document, or none;
 * - `putFile`/`putStream` name the blob by the SHA-256 of the bytes the store actually holds;
 * - `readBlob` of a blob that is not there throws `CG_BACKUP_CORRUPT` with `details.missing: true`, and a
 *   blob whose bytes no longer hash to its name throws `CG_BACKUP_CORRUPT` before its iteration ends
 *   ({@link checkedBlob} does both): nothing read back is trusted;
 * - a bad digest or document key is `CG_CONFIG_INVALID` before any I/O.
 *
 * @example
 * ```ts
 * const store = localBlobStore('/opt/codegraph/backups')
 * const { sha256, written } = await store.putFile('/tmp/ckpt/000012.sst')
 * for await (const chunk of store.readBlob(sha256)) process.stdout.write(chunk)
 * ```
 */
export interface BlobStore {
  /** Where the store is, for messages (a directory, a bucket URL). */
  readonly location: string;
  /** The size of a stored blob, or undefined when there is none. */
  statBlob(sha256: string): Promise<number | undefined>;
  /** Copies a local file in and hashes it in the same pass; a blob already stored is not duplicated. */
  putFile(path: string, options?: BlobIoOptions): Promise<BlobWrite>;
  /** Same as {@link BlobStore.putFile} for a stream (bundle import, copies between stores). */
  putStream(source: AsyncIterable<Uint8Array>, options?: BlobIoOptions): Promise<BlobWrite>;
  /** Streams a blob's bytes, checked against its name (see the contract above). */
  readBlob(sha256: string, options?: BlobIoOptions): AsyncIterable<Uint8Array>;
  /** Every stored blob. */
  listBlobs(): AsyncIterable<{ sha256: string; size: number }>;
  /** Deletes a blob (garbage collection only); a blob that is not there is not an error. */
  removeBlob(sha256: string): Promise<void>;
  /** Reads a small document, or undefined when there is none. */
  readDoc(key: string): Promise<Uint8Array | undefined>;
  /** Writes a small document atomically and durably. */
  writeDoc(key: string, data: Uint8Array | string, options?: DocWriteOptions): Promise<void>;
  /** Keys of the documents under a prefix (`backups/`). */
  listDocs(prefix: string): Promise<string[]>;
  removeDoc(key: string): Promise<void>;
  /**
   * Takes the repository's lock (one create, import, restore or prune at a time); the returned function
   * releases it. A lock left by a process that died is taken over.
   */
  lock(): Promise<() => Promise<void>>;
  /** Deletes leftovers of interrupted writes. Only called while the repository lock is held. */
  cleanTemporary(): Promise<number>;
  /** A local, read-only path of a blob, when the store has one (lets a scan hard-link instead of copying). */
  localPath?(sha256: string): string;
  /**
   * The independent copies a replicated store keeps, primary first ({@link mirroredBlobStore}): verify
   * checks and reports each one.
   */
  copies?(): readonly BlobStore[];
}

/** A blob's name: a lowercase hex SHA-256. */
export const SHA256 = /^[0-9a-f]{64}$/;
const DOC_KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/**
 * Checks a blob name before any I/O: a lowercase hex SHA-256, else {@link ConfigInvalidError}.
 *
 * @example
 * ```ts
 * const key = `${prefix}blobs/${checkBlobName(sha256)}`
 * ```
 */
export function checkBlobName(sha256: string): string {
  if (typeof sha256 !== 'string' || !SHA256.test(sha256)) {
    throw new ConfigInvalidError(`not a sha256 digest: ${JSON.stringify(sha256)}`, {
      plugin: 'backup-rocksdb',
    });
  }
  return sha256;
}

/**
 * Checks a document key before any I/O: `/`-separated segments of letters, digits, `.`, `_` and `-`, none of
 * them `.` or `..`; else {@link ConfigInvalidError}.
 *
 * @example
 * ```ts
 * const objectKey = `${prefix}${checkDocKey('backups/20261125T184500123Z-1a2b3c4d5e6f/manifest.json')}`
 * ```
 */
export function checkDocKey(key: string): string {
  if (typeof key !== 'string' || !DOC_KEY.test(key) || key.split('/').some((p) => p === '.' || p === '..')) {
    throw new ConfigInvalidError(`not a document key: ${JSON.stringify(key)}`, { plugin: 'backup-rocksdb' });
  }
  return key;
}

/**
 * The typed error of a blob that is not in a store.
 *
 * @example
 * ```ts
 * throw missingBlob('s3://bucket/backups', sha256)
 * ```
 */
export function missingBlob(location: string, sha256: string, cause?: unknown): BackupCorruptError {
  return new BackupCorruptError(`blob ${sha256} is missing from ${location}`, {
    plugin: 'backup-rocksdb',
    ...(cause !== undefined ? { cause } : {}),
    details: { sha256, location, missing: true },
  });
}

/**
 * Wraps a blob's byte stream so that it is checked as it is read: the bytes are hashed on the way through,
 * and the iteration throws `CG_BACKUP_CORRUPT` (naming the blob and the store) at its end when they do not
 * hash to the blob's name. `notFound` tells which source errors mean "no such blob".
 *
 * @example
 * ```ts
 * readBlob: (sha256) => checkedBlob(sha256, location, download(sha256), (e) => e.name === 'NoSuchKey')
 * ```
 */
export async function* checkedBlob(
  sha256: string,
  location: string,
  source: AsyncIterable<Uint8Array>,
  notFound: (err: unknown) => boolean = () => false,
): AsyncGenerator<Uint8Array> {
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of source) {
      hash.update(chunk);
      size += chunk.byteLength;
      yield chunk;
    }
  } catch (err) {
    if (notFound(err)) throw missingBlob(location, sha256, err);
    throw err;
  }
  const got = hash.digest('hex');
  if (got !== sha256) {
    throw new BackupCorruptError(
      `blob ${sha256} in ${location} is damaged: its ${size} bytes hash to ${got}`,
      { plugin: 'backup-rocksdb', details: { sha256, location, actual: got, size } },
    );
  }
}
