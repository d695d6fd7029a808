import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Logger } from '@codegraph/release-core';
import { BackupFailedError, ConfigInvalidError } from '@codegraph/release-core';
import { runTool } from './tool.js';
import { lstatOrUndefined, nonce } from './utils/fs.js';
import { lockHolder } from './utils/lock.js';

/**
 * What a snapshot source receives.
 *
 * @example
 * ```ts
 * const snapshot = await stoppedDatabase().open(db, { logger: consoleLogger() })
 * ```
 */
export interface SnapshotContext {
  signal?: AbortSignal | undefined;
  logger: Logger;
}

/**
 * A consistent view of the database, open for the duration of one backup.
 *
 * @example
 * ```ts
 * const snapshot: Snapshot = { dir: '/srv/ckpt', include: (name) => name !== 'LOCK', async dispose() {} }
 * ```
 */
export interface Snapshot {
  /** A RocksDB directory whose files are consistent with each other. */
  readonly dir: string;
  /** Which top-level files of `dir` are backed up. @default every file but LOCK and the info LOGs */
  include?(name: string): boolean;
  /** Called once the extra directories are stored: resumes what the snapshot paused (indexing). */
  thaw?(): Promise<void>;
  /** Called after every file is stored and before the backup is committed; throws if the view broke. */
  confirm?(): Promise<void>;
  /** Always called last: removes temporary checkpoints and resumes whatever is still paused. */
  dispose(): Promise<void>;
}

/**
 * Where a backup's consistent view of the database comes from.
 *
 * @example
 * ```ts
 * const source: SnapshotSource = { kind: 'mine', async open(db) { return { dir: db, async dispose() {} } } }
 * ```
 */
export interface SnapshotSource {
  /** Recorded in the backup's metadata (`admin-api`, `stopped-database`, `ldb-checkpoint`, `directory`). */
  readonly kind: string;
  open(db: string, ctx: SnapshotContext): Promise<Snapshot>;
}

/** The info logs and the lock are process state, not data. */
export function isDataFile(name: string): boolean {
  return name !== 'LOCK' && name !== 'LOG' && !name.startsWith('LOG.old');
}

/**
 * Checks that `dir` is a usable RocksDB directory: CURRENT names a MANIFEST that exists.
 * Throws {@link BackupFailedError} otherwise.
 *
 * @example
 * ```ts
 * await checkCheckpoint('/srv/checkpoints/today') // throws CG_BACKUP_FAILED when CURRENT is dangling
 * ```
 */
export async function checkCheckpoint(dir: string): Promise<void> {
  const current = await readFile(join(dir, 'CURRENT'), 'utf8').catch(() => undefined);
  const manifest = current?.trim() ?? '';
  if (!/^MANIFEST-\d+$/.test(manifest) || !(await lstatOrUndefined(join(dir, manifest)))?.isFile()) {
    throw new BackupFailedError(
      `${dir} is not a consistent RocksDB checkpoint: CURRENT ${
        current === undefined ? 'is missing' : `names ${JSON.stringify(manifest)}, which does not exist`
      }`,
      { plugin: 'backup-rocksdb', phase: 'backup', details: { dir } },
    );
  }
}

function defaultCheckpointDir(db: string): string {
  return join(dirname(db), '.codegraph-checkpoints');
}

/**
 * Options of {@link adminApiCheckpoint}.
 *
 * @example
 * ```ts
 * const options: AdminApiCheckpointOptions = { url: 'http://127.0.0.1:8000', apiKey: process.env.ADMIN_API_KEY! }
 * ```
 */
export interface AdminApiCheckpointOptions {
  /** The service's base URL, e.g. `http://127.0.0.1:8000`. */
  url: string;
  /** The admin API key, sent as a Bearer token (never logged). */
  apiKey: string;
  /**
   * Where the service writes checkpoints; it must be able to write there, on the database's filesystem so
   * that SST files are hard-linked. @default `<db parent>/.codegraph-checkpoints`
   */
  checkpointDir?: string;
  /** Pause indexing around the checkpoint and the extra directories, as the seeds' backup script does. @default true */
  pauseIndexing?: boolean;
  /** Time limit of each admin call, in milliseconds. @default 600000 */
  timeoutMs?: number;
  /**
   * The admin API's paths, where a service names them differently.
   * @default { pause: '/api/v1/admin/pause-indexing', checkpoint: '/api/v1/admin/checkpoint', resume: '/api/v1/admin/resume-indexing' }
   */
  endpoints?: { pause?: string; checkpoint?: string; resume?: string };
}

/**
 * Asks the running service for a checkpoint: `POST /api/v1/admin/pause-indexing`, `POST
 * /api/v1/admin/checkpoint {"path"}`, and `POST /api/v1/admin/resume-indexing` once the extra directories
 * are stored (always, even when the backup fails).
 *
 * @example
 * ```ts
 * rocksdbBackup({ repository, db, source: adminApiCheckpoint({ url: 'http://127.0.0.1:8000', apiKey }) })
 * ```
 */
export function adminApiCheckpoint(options: AdminApiCheckpointOptions): SnapshotSource {
  let base: URL;
  try {
    base = new URL(options.url);
  } catch (err) {
    throw new ConfigInvalidError(`adminApiCheckpoint: url ${JSON.stringify(options.url)} is not a URL`, {
      cause: err,
    });
  }
  if (typeof options.apiKey !== 'string' || options.apiKey === '') {
    throw new ConfigInvalidError('adminApiCheckpoint: apiKey is required (the Bearer key of the admin API)');
  }
  const timeoutMs = options.timeoutMs ?? 600_000;
  const endpoints = {
    pause: options.endpoints?.pause ?? '/api/v1/admin/pause-indexing',
    checkpoint: options.endpoints?.checkpoint ?? '/api/v1/admin/checkpoint',
    resume: options.endpoints?.resume ?? '/api/v1/admin/resume-indexing',
  };
  const call = async (path: string, body: unknown, signal: AbortSignal | undefined): Promise<void> => {
    const url = new URL(path, base);
    const timeout = AbortSignal.timeout(timeoutMs);
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      throw new BackupFailedError(`POST ${url.pathname} failed: ${(err as Error).message}`, {
        cause: err,
        plugin: 'backup-rocksdb',
        phase: 'backup',
        retryable: true,
      });
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) {
      throw new BackupFailedError(`POST ${url.pathname} answered ${res.status}: ${text.slice(0, 300)}`, {
        plugin: 'backup-rocksdb',
        phase: 'backup',
        retryable: res.status >= 500,
        details: { status: res.status },
      });
    }
  };
  return {
    kind: 'admin-api',
    async open(db, ctx) {
      const parent = options.checkpointDir ?? defaultCheckpointDir(db);
      await mkdir(parent, { recursive: true });
      const dir = join(parent, `checkpoint-${nonce()}`);
      let paused = false;
      const resume = async (): Promise<void> => {
        if (!paused) return;
        paused = false;
        await call(endpoints.resume, {}, undefined);
      };
      try {
        if (options.pauseIndexing !== false) {
          await call(endpoints.pause, {}, ctx.signal);
          paused = true;
        }
        await call(endpoints.checkpoint, { path: dir }, ctx.signal);
        await checkCheckpoint(dir);
      } catch (err) {
        await resume().catch((e) =>
          ctx.logger.error('backup-rocksdb: resume-indexing failed', { error: String(e) }),
        );
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
      return {
        dir,
        include: isDataFile,
        thaw: resume,
        async dispose() {
          try {
            await resume();
          } finally {
            // The checkpoint is ours: hard links to live files, or copies made for this backup.
            await rm(dir, { recursive: true, force: true });
          }
        },
      };
    },
  };
}

async function refuseIfLocked(db: string, doing: string): Promise<void> {
  const holder = await lockHolder(db);
  if (holder) {
    throw new BackupFailedError(
      `${doing} refused: process ${holder.pid} holds ${join(db, 'LOCK')}; stop the service first, or back up ` +
        'through adminApiCheckpoint() or ldbCheckpoint()',
      { plugin: 'backup-rocksdb', details: { db, pid: holder.pid } },
    );
  }
}

/**
 * Backs up a stopped database directly: its files are copied into the repository (LOCK and LOG files
 * skipped). Refused while any process holds the database's LOCK, and the backup is failed if one takes it
 * or CURRENT changes before the copy is complete.
 *
 * @example
 * ```ts
 * rocksdbBackup({ repository, db: '/opt/codegraph/data/rocksdb', source: stoppedDatabase() })
 * ```
 */
export function stoppedDatabase(): SnapshotSource {
  return {
    kind: 'stopped-database',
    async open(db) {
      await refuseIfLocked(db, `backing up ${db}`);
      await checkCheckpoint(db);
      const current = await readFile(join(db, 'CURRENT'), 'utf8');
      return {
        dir: db,
        include: isDataFile,
        async confirm() {
          await refuseIfLocked(db, `backing up ${db} (the database was opened during the copy)`);
          if ((await readFile(join(db, 'CURRENT'), 'utf8')) !== current) {
            throw new BackupFailedError(
              `${db} changed during the backup (CURRENT moved); run the backup again`,
              {
                plugin: 'backup-rocksdb',
                retryable: true,
              },
            );
          }
        },
        async dispose() {},
      };
    },
  };
}

/**
 * Options of {@link ldbCheckpoint}.
 *
 * @example
 * ```ts
 * const options: LdbCheckpointOptions = { ldb: '/opt/rocksdb-9/bin/ldb', checkpointDir: '/opt/codegraph/checkpoints' }
 * ```
 */
export interface LdbCheckpointOptions {
  /** The `ldb` binary; it must be able to read the database's format. @default 'ldb' */
  ldb?: string;
  /** Where checkpoints are made, on the database's filesystem. @default `<db parent>/.codegraph-checkpoints` */
  checkpointDir?: string;
}

/**
 * Makes a checkpoint with `ldb checkpoint`, opening the database as a secondary instance when another process
 * holds it open. Only for databases the installed ldb can read (Debian's 7.8.3 cannot open RocksDB 9+ files).
 *
 * @example
 * ```ts
 * rocksdbBackup({ repository, db, source: ldbCheckpoint({ ldb: '/usr/bin/ldb' }) })
 * ```
 */
export function ldbCheckpoint(options: LdbCheckpointOptions = {}): SnapshotSource {
  const ldb = options.ldb ?? 'ldb';
  return {
    kind: 'ldb-checkpoint',
    async open(db, ctx) {
      const parent = options.checkpointDir ?? defaultCheckpointDir(db);
      await mkdir(parent, { recursive: true });
      const dir = join(parent, `checkpoint-${nonce()}`);
      const held = await lockHolder(db);
      const secondary = held ? await mkdtemp(join(tmpdir(), 'cg-ldb-secondary-')) : undefined;
      const args = [`--db=${db}`, ...(secondary ? [`--secondary_path=${secondary}`] : [])];
      try {
        await runTool(ldb, [...args, 'checkpoint', `--checkpoint_dir=${dir}`], ctx.signal);
        await checkCheckpoint(dir);
      } catch (err) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      } finally {
        if (secondary) await rm(secondary, { recursive: true, force: true });
      }
      return {
        dir,
        include: isDataFile,
        async dispose() {
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

/**
 * A directory the caller declares consistent (a checkpoint made by other means, a stopped copy). Its CURRENT
 * must name an existing MANIFEST.
 *
 * @example
 * ```ts
 * rocksdbBackup({ repository, db, source: consistentDirectory('/srv/checkpoints/today') })
 * ```
 */
export function consistentDirectory(dir?: string): SnapshotSource {
  return {
    kind: 'directory',
    async open(db) {
      const path = dir ?? db;
      await checkCheckpoint(path);
      return { dir: path, include: isDataFile, async dispose() {} };
    },
  };
}

export { runTool } from './tool.js';
