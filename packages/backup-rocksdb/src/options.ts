import { basename, dirname, join, resolve } from 'node:path';
import type { BackupRequest, Logger } from '@codegraph/release-core';
import { ConfigInvalidError, silentLogger } from '@codegraph/release-core';
import type { BlobStore } from './blob-store.js';
import { DEFAULT_IMPORT_LIMITS, type ImportLimits } from './bundle.js';
import { localBlobStore } from './local-store.js';
import { type SnapshotSource, stoppedDatabase } from './sources.js';
import { DEFAULT_CHUNK_SIZE } from './utils/fs.js';

/**
 * A file stored by a backup, reported as it happens.
 *
 * @example
 * ```ts
 * rocksdbBackup({ repository, db, onProgress: (e) => console.log(e.path, e.written ? 'new' : 'deduplicated') })
 * ```
 */
export interface BackupProgress {
  /** Path inside the backup (`rocksdb/000012.sst`). */
  path: string;
  size: number;
  /** False when the repository already had these bytes (deduplicated). */
  written: boolean;
}

/**
 * Options of {@link rocksdbBackup}.
 *
 * @example
 * ```ts
 * const options: RocksdbBackupOptions = {
 *   repository: '/opt/codegraph/backups',
 *   db: '/opt/codegraph/data/rocksdb',
 *   extras: { vector: '/opt/codegraph/data/vector', config: '/etc/codegraph' },
 *   concurrency: 4,
 * }
 * ```
 */
export interface RocksdbBackupOptions {
  /** The backup repository: a directory (a {@link localBlobStore}) or any {@link BlobStore}. */
  repository: string | BlobStore;
  /** The RocksDB database directory (the service's `--data-dir`); restores go here. */
  db: string;
  /** Where a consistent view of the database comes from. @default stoppedDatabase() */
  source?: SnapshotSource;
  /**
   * Directories backed up alongside the database and restored to the same place, by name
   * (e.g. `{ vector: '/opt/codegraph/data/vector', config: '/etc/codegraph' }`). @default {}
   */
  extras?: Record<string, string>;
  /** Files copied (or hashed) at the same time. @default 4 */
  concurrency?: number;
  /** Bytes per read in every streaming pass. @default 1048576 (1 MiB) */
  chunkSize?: number;
  /** The `ldb` binary used by verify level `scan`; pick one that matches the service's RocksDB. @default 'ldb' */
  ldb?: string;
  /** gzip level of exported bundles (SST files compress little), or false for a plain tar. @default 1 */
  gzipLevel?: number | false;
  /** The provider's name in logs and errors. @default 'rocksdb' */
  name?: string;
  /** Used when a call passes no logger. @default silentLogger */
  logger?: Logger;
  /** Called for every file a backup stores. @default undefined */
  onProgress?: (event: BackupProgress) => void;
  /** The clock (backup times, `pre-recovery` names). @default () => new Date() */
  now?: () => Date;
  /**
   * How long a stored blob that was read back and found good (when written, reused, or verified at level
   * `checksum`) is reused by the next backup without reading it again. Past that, a reused blob is read back
   * and compared with the file first, and written again if it rotted. 0 reads back every reused blob.
   * @default 86400000 (24 hours)
   */
  reuseVerifiedWithinMs?: number;
  /**
   * Bounds of {@link RocksdbBackup.importBundle}, checked before anything is written.
   * @default { fileBytes: 16 GiB, totalBytes: 64 GiB, manifestBytes: 16 MiB }
   */
  importLimits?: ImportLimits;
}

/** Options after defaults and checks. */
export interface ResolvedOptions {
  store: BlobStore;
  db: string;
  source: SnapshotSource;
  extras: Record<string, string>;
  concurrency: number;
  chunkSize: number;
  ldb: string;
  gzipLevel: number | false;
  name: string;
  logger: Logger;
  onProgress: ((event: BackupProgress) => void) | undefined;
  now: () => Date;
  importLimits: Required<ImportLimits>;
  reuseVerifiedWithinMs: number;
  /** Where a restore records its swap (beside the database), so that a crash is rolled forward. */
  intent: string;
}

const EXTRA_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const REASONS = new Set(['pre-release', 'pre-rollback', 'scheduled', 'manual', 'pre-recovery']);

function invalid(message: string): ConfigInvalidError {
  return new ConfigInvalidError(`rocksdbBackup: ${message}`, { plugin: 'backup-rocksdb' });
}

/** Applies defaults, and rejects bad options before anything touches the disk. */
export function resolveOptions(options: RocksdbBackupOptions): ResolvedOptions {
  if (!options || typeof options !== 'object') throw invalid('options are required ({ repository, db })');
  const { repository, db } = options;
  if (typeof db !== 'string' || db.trim() === '') throw invalid('`db` must be the database directory');
  let store: BlobStore;
  if (typeof repository === 'string' && repository.trim() !== '') store = localBlobStore(repository);
  else if (repository && typeof repository === 'object' && typeof repository.putFile === 'function')
    store = repository;
  else throw invalid('`repository` must be a directory path or a BlobStore');
  const extras: Record<string, string> = {};
  for (const [name, dir] of Object.entries(options.extras ?? {})) {
    if (!EXTRA_NAME.test(name) || name === 'rocksdb' || name === 'manifest.json' || name === 'SHA256SUMS') {
      throw invalid(`extra name ${JSON.stringify(name)} must be a plain name other than rocksdb`);
    }
    if (typeof dir !== 'string' || dir.trim() === '') throw invalid(`extra ${name} needs a directory path`);
    extras[name] = resolve(dir);
  }
  const concurrency = options.concurrency ?? 4;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw invalid(`concurrency must be a whole number from 1 to 64, not ${String(concurrency)}`);
  }
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 4096 || chunkSize > 64 << 20) {
    throw invalid(`chunkSize must be from 4096 to 67108864 bytes, not ${String(chunkSize)}`);
  }
  const gzipLevel = options.gzipLevel ?? 1;
  if (gzipLevel !== false && (!Number.isSafeInteger(gzipLevel) || gzipLevel < 0 || gzipLevel > 9)) {
    throw invalid(`gzipLevel must be 0 to 9 or false, not ${String(gzipLevel)}`);
  }
  const importLimits = { ...DEFAULT_IMPORT_LIMITS };
  for (const [k, v] of Object.entries(options.importLimits ?? {})) {
    if (!(k in importLimits) || !Number.isSafeInteger(v) || (v as number) < 1) {
      throw invalid(`importLimits.${k} must be a positive whole number of bytes, not ${String(v)}`);
    }
    importLimits[k as keyof ImportLimits] = v as number;
  }
  const reuseVerifiedWithinMs = options.reuseVerifiedWithinMs ?? 86_400_000;
  if (!Number.isSafeInteger(reuseVerifiedWithinMs) || reuseVerifiedWithinMs < 0) {
    throw invalid(
      `reuseVerifiedWithinMs must be a whole number of milliseconds >= 0, not ${String(reuseVerifiedWithinMs)}`,
    );
  }
  const dbPath = resolve(db);
  return {
    store,
    importLimits,
    reuseVerifiedWithinMs,
    intent: join(dirname(dbPath), `.${basename(dbPath)}.restore-intent.json`),
    db: dbPath,
    source: options.source ?? stoppedDatabase(),
    extras,
    concurrency,
    chunkSize,
    ldb: options.ldb ?? 'ldb',
    gzipLevel,
    name: options.name ?? 'rocksdb',
    logger: options.logger ?? silentLogger,
    onProgress: options.onProgress,
    now: options.now ?? (() => new Date()),
  };
}

/** Rejects a malformed backup request before anything happens. */
export function checkRequest(request: BackupRequest): void {
  if (!request || typeof request !== 'object') throw invalid('create() needs a request ({ reason })');
  if (!REASONS.has(request.reason)) {
    throw invalid(`reason must be one of ${[...REASONS].join(', ')}, not ${JSON.stringify(request.reason)}`);
  }
  if (request.version !== undefined && typeof request.version !== 'string')
    throw invalid('version must be a string');
  if (request.environment !== undefined && typeof request.environment !== 'string') {
    throw invalid('environment must be a string');
  }
  for (const [k, v] of Object.entries(request.labels ?? {})) {
    if (typeof v !== 'string') throw invalid(`label ${k} must be a string`);
  }
}
