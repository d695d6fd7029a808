import { hostname } from 'node:os';
import type {
  BackupInfo,
  BackupProvider,
  BackupRequest,
  OperationContext,
  PruneResult,
  RestoreRequest,
  RestoreResult,
  RetentionPolicy,
  VerifyLevel,
} from '@codegraph/release-core';
import {
  BackupCorruptError,
  BackupFailedError,
  ConfigInvalidError,
  ReleaseError,
} from '@codegraph/release-core';
import { ensureKey } from './auth.js';
import { readBundle, writeBundle } from './bundle.js';
import { type BackupManifest, componentOf, damagedInfo, newBackupId, toBackupInfo } from './manifest.js';
import { checkRequest, type ResolvedOptions, type RocksdbBackupOptions, resolveOptions } from './options.js';
import {
  collectGarbage,
  commitManifest,
  listManifests,
  readManifest,
  readVerification,
  removeBackupRecords,
  type SourceFile,
  storeFiles,
  writeVerification,
} from './repository.js';
import {
  checkRestoreRequest,
  type RestoredComponent,
  recoverRestores,
  restoreManifest,
  selectBackup,
} from './restore.js';
import { checkRetentionPolicy, planRetention } from './retention.js';
import { checkAbort, lstatOrUndefined, walkFiles } from './utils/fs.js';
import { readVerified, writeVerified } from './verified.js';
import { type CopiesVerification, verifyBackup, verifyManifest } from './verify.js';

/**
 * What {@link RocksdbBackup.restore} did.
 *
 * @example
 * ```ts
 * const { id, movedAside, components } = await backup.restore({ at: '2026-11-24T23:00:00Z' })
 * ```
 */
export interface RocksdbRestoreResult extends RestoreResult {
  /** Each component of the backup: where it went and where the previous data was moved. */
  components: RestoredComponent[];
}

/**
 * The RocksDB backup provider: the {@link BackupProvider} calls plus retention and offline bundles.
 *
 * @example
 * ```ts
 * const backup: RocksdbBackup = rocksdbBackup({ repository: '/opt/codegraph/backups', db: '/opt/codegraph/data/rocksdb' })
 * await backup.exportBundle(id, '/mnt/offline/codegraph-kit.tar.gz')
 * await otherSite.importBundle('/mnt/offline/codegraph-kit.tar.gz')
 * ```
 */
export interface RocksdbBackup extends BackupProvider {
  /** Backups, newest first. */
  list(ctx?: OperationContext): Promise<BackupInfo[]>;
  /** Verifies a backup; a replicated store's copies are each verified and reported in `copies`. */
  verify(id: string, options?: { level?: VerifyLevel } & OperationContext): Promise<CopiesVerification>;
  restore(request: RestoreRequest, ctx?: OperationContext): Promise<RocksdbRestoreResult>;
  prune(policy: RetentionPolicy, ctx?: OperationContext): Promise<PruneResult>;
  /** Writes one backup as a tar bundle with SHA256SUMS (gzipped unless `gzipLevel: false`). */
  exportBundle(id: string, file: string, ctx?: OperationContext): Promise<{ path: string; bytes: number }>;
  /** Adds the backup in a bundle made by {@link RocksdbBackup.exportBundle} to the repository. */
  importBundle(file: string, ctx?: OperationContext): Promise<BackupInfo>;
}

async function storeTree(dir: string, prefix: string, include: (rel: string) => boolean) {
  const found = await walkFiles(dir, include);
  return found.map((f): SourceFile => ({ ...f, target: `${prefix}/${f.path}` }));
}

async function createBackup(
  o: ResolvedOptions,
  request: BackupRequest,
  ctx: OperationContext,
): Promise<BackupInfo> {
  checkRequest(request);
  const logger = ctx.logger ?? o.logger;
  checkAbort(ctx.signal, 'backup');
  const release = await o.store.lock();
  try {
    await o.store.cleanTemporary();
    // Never back up a database that an interrupted restore left half swapped: finish that restore first.
    await recoverRestores(o.intent, { rocksdb: o.db, ...o.extras }, logger);
    for (const [name, dir] of Object.entries(o.extras)) {
      if (!(await lstatOrUndefined(dir))?.isDirectory()) {
        throw new ConfigInvalidError(`extra ${name}: ${dir} is not a directory`, {
          plugin: 'backup-rocksdb',
        });
      }
      // Refuses links and special files now, before the service is asked to pause or checkpoint.
      await walkFiles(dir);
    }
    const key = await ensureKey(o.store);
    const previous = (await listManifests(o.store, logger)).manifests.at(-1);
    const hints = new Map((previous?.files ?? []).map((f) => [f.path, f]));
    const now = o.now().getTime();
    const verified = await readVerified(o.store, now);
    const io = {
      concurrency: o.concurrency,
      chunkSize: o.chunkSize,
      signal: ctx.signal,
      verified,
      now,
      trustMs: o.reuseVerifiedWithinMs,
    };
    const onFile = (f: { path: string; size: number }, written: boolean) =>
      o.onProgress?.({ path: f.path, size: f.size, written });
    const snapshot = await o.source.open(o.db, { signal: ctx.signal, logger });
    const createdAt = o.now();
    try {
      logger.info('backup-rocksdb: snapshot open', { source: o.source.kind, dir: snapshot.dir });
      const extraFiles: SourceFile[] = [];
      for (const [name, dir] of Object.entries(o.extras))
        extraFiles.push(...(await storeTree(dir, name, () => true)));
      const extras = await storeFiles(o.store, extraFiles, hints, { ...io, onFile });
      await snapshot.thaw?.();
      const include = snapshot.include ?? (() => true);
      const dbFiles = await storeTree(snapshot.dir, 'rocksdb', (rel) => !rel.includes('/') && include(rel));
      const db = await storeFiles(o.store, dbFiles, hints, { ...io, onFile });
      await snapshot.confirm?.();
      const files = [...db.files, ...extras.files];
      const components: BackupManifest['metadata']['components'] = {};
      for (const f of files) {
        const name = componentOf(f.path);
        const c = components[name] ?? { files: 0, sizeBytes: 0 };
        components[name] = { files: c.files + 1, sizeBytes: c.sizeBytes + f.size };
      }
      const manifest: BackupManifest = {
        format: 'codegraph-rocksdb-backup/1',
        id: newBackupId(createdAt),
        createdAt: createdAt.toISOString(),
        reason: request.reason,
        ...(request.version !== undefined ? { version: request.version } : {}),
        ...(request.environment !== undefined ? { environment: request.environment } : {}),
        labels: { ...request.labels },
        metadata: {
          host: hostname(),
          source: o.source.kind,
          sizeBytes: files.reduce((n, f) => n + f.size, 0),
          writtenBytes: db.writtenBytes + extras.writtenBytes,
          components,
        },
        files,
      };
      checkAbort(ctx.signal, 'backup');
      await commitManifest(o.store, manifest, key);
      await writeVerified(o.store, verified).catch((err: unknown) =>
        logger.warn('backup-rocksdb: could not record which blobs were read back', { error: String(err) }),
      );
      logger.info('backup-rocksdb: backup committed', {
        id: manifest.id,
        files: files.length,
        sizeBytes: manifest.metadata.sizeBytes,
        writtenBytes: manifest.metadata.writtenBytes,
      });
      return toBackupInfo(manifest, undefined);
    } finally {
      await snapshot.dispose();
    }
  } finally {
    await release();
  }
}

/** File-system failures (ENOSPC, EACCES...) become a typed error that keeps the original as its cause. */
function typed(err: unknown, phase: 'backup' | 'restore' | 'export' | 'import'): unknown {
  if (err instanceof ReleaseError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new BackupFailedError(`${phase} failed: ${message}`, {
    cause: err,
    plugin: 'backup-rocksdb',
    phase,
  });
}

/** Backups newest first, the damaged ones included (marked `damaged`), so that none goes unseen. */
async function infos(o: ResolvedOptions, ctx: OperationContext): Promise<BackupInfo[]> {
  const { manifests, damaged } = await listManifests(o.store, ctx.logger ?? o.logger);
  const out = await Promise.all(
    manifests.map(async (m) => toBackupInfo(m, await readVerification(o.store, m.id))),
  );
  out.push(...damaged.map((d) => damagedInfo(d.id, d.reason)));
  return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
}

/** Runs `fn` holding the repository lock (create, import, restore and prune exclude each other). */
async function locked<T>(o: ResolvedOptions, fn: () => Promise<T>): Promise<T> {
  const release = await o.store.lock();
  try {
    return await fn();
  } finally {
    await release();
  }
}

/**
 * A {@link BackupProvider} for a RocksDB database owned by another process (the CodeGraph server):
 * consistent snapshots, a content-addressed incremental repository, verification in levels, restore by id or
 * point in time with the old data moved aside, union retention with garbage collection, and tar bundles.
 *
 * @example
 * ```ts
 * import { rocksdbBackup, adminApiCheckpoint } from '@codegraph/backup-rocksdb'
 *
 * const backup = rocksdbBackup({
 *   repository: '/opt/codegraph/backups',
 *   db: '/opt/codegraph/data/rocksdb',
 *   source: adminApiCheckpoint({ url: 'http://127.0.0.1:8000', apiKey: process.env.ADMIN_API_KEY! }),
 *   extras: { vector: '/opt/codegraph/data/vector', config: '/etc/codegraph' },
 * })
 * const { id } = await backup.create({ reason: 'pre-release', version: 'v1.2.3' })
 * const check = await backup.verify(id, { level: 'checksum' })
 * await backup.prune({ keepLast: 7, maxAgeMs: 30 * 24 * 3600_000 })
 * ```
 */
export function rocksdbBackup(options: RocksdbBackupOptions): RocksdbBackup {
  const o = resolveOptions(options);
  const io = (ctx: OperationContext) => ({
    concurrency: o.concurrency,
    chunkSize: o.chunkSize,
    signal: ctx.signal,
  });

  // Restore holds the repository lock: a prune cannot remove the backup while it is being restored.
  const restoreLocked = async (
    request: RestoreRequest,
    ctx: OperationContext,
  ): Promise<RocksdbRestoreResult> => {
    const logger = ctx.logger ?? o.logger;
    const destinations = { rocksdb: o.db, ...o.extras };
    await recoverRestores(o.intent, destinations, logger);
    const chosen = selectBackup(await infos(o, ctx), request);
    const manifest = await readManifest(o.store, chosen.id);
    // Presence first (cheap); the checksum of every file is then checked while it is staged, before any swap.
    const presence = await verifyManifest(o.store, manifest, 'presence', { ...io(ctx), ldb: o.ldb });
    if (!presence.ok) {
      throw new BackupCorruptError(
        `backup ${manifest.id} is incomplete: ${presence.problems.map((p) => `${p.path} (${p.problem})`).join(', ')}; ` +
          'nothing was changed; choose another backup explicitly',
        {
          plugin: 'backup-rocksdb',
          phase: 'restore',
          details: { id: manifest.id, problems: presence.problems },
        },
      );
    }
    const components = await restoreManifest(o.store, manifest, destinations, {
      ...io(ctx),
      logger,
      now: o.now,
      intent: o.intent,
    }).catch((err: unknown) => {
      throw typed(err, 'restore');
    });
    await writeVerification(o.store, manifest.id, {
      ok: true,
      level: 'checksum',
      at: o.now().toISOString(),
    });
    const db = components.find((c) => c.name === 'rocksdb');
    return { id: manifest.id, ...(db?.movedAside ? { movedAside: db.movedAside } : {}), components };
  };

  // What a verification learnt about each blob (of the primary copy): good ones are known good from now, a
  // damaged or missing one is no longer, so the next backup writes it again.
  const recordBlobs = async (manifest: BackupManifest, result: CopiesVerification, level: VerifyLevel) => {
    const now = o.now().getTime();
    const record = await readVerified(o.store, now);
    const problems = result.copies?.[0]?.problems ?? result.problems;
    const bad = new Set(
      problems
        .filter((p) => p.problem !== 'scan')
        .map((p) => manifest.files.find((f) => f.path === p.path)?.sha256),
    );
    for (const f of manifest.files) {
      if (bad.has(f.sha256)) record.delete(f.sha256);
      else if (level !== 'presence') record.set(f.sha256, now);
    }
    await writeVerified(o.store, record);
  };

  const provider = {
    name: o.name,
    create: (request: BackupRequest, ctx: OperationContext = {}) =>
      createBackup(o, request, ctx).catch((err: unknown) => {
        throw typed(err, 'backup');
      }),
    list: (ctx: OperationContext = {}) => infos(o, ctx),

    async verify(
      id: string,
      opts: { level?: VerifyLevel } & OperationContext = {},
    ): Promise<CopiesVerification> {
      const level = opts.level ?? 'checksum';
      let manifest: BackupManifest;
      try {
        manifest = await readManifest(o.store, id);
      } catch (err) {
        if (!(err instanceof BackupCorruptError)) throw err;
        // Records that disagree: the backup is reported corrupt (by its manifest), not skipped.
        const detail = String(err.details?.['reason'] ?? err.message);
        await writeVerification(o.store, id, { ok: false, level, at: o.now().toISOString() });
        return { id, ok: false, level, problems: [{ path: 'manifest.json', problem: 'checksum', detail }] };
      }
      const result = await verifyBackup(o.store, manifest, level, { ...io(opts), ldb: o.ldb });
      await recordBlobs(manifest, result, level).catch(() => undefined);
      await writeVerification(o.store, id, { ok: result.ok, level: result.level, at: o.now().toISOString() });
      return result;
    },

    async restore(request: RestoreRequest, ctx: OperationContext = {}): Promise<RocksdbRestoreResult> {
      checkRestoreRequest(request);
      return locked(o, () => restoreLocked(request, ctx));
    },

    async prune(policy: RetentionPolicy, ctx: OperationContext = {}): Promise<PruneResult> {
      checkRetentionPolicy(policy);
      return locked(o, async () => {
        const { manifests, damaged } = await listManifests(o.store, ctx.logger ?? o.logger);
        const candidates = await Promise.all(
          manifests.map(async (m) => ({
            id: m.id,
            createdAt: m.createdAt,
            verified: (await readVerification(o.store, m.id))?.ok,
          })),
        );
        const plan = planRetention(candidates, policy);
        for (const id of plan.remove) {
          checkAbort(ctx.signal, 'prune');
          await removeBackupRecords(o.store, id);
        }
        const kept = manifests.filter((m) => plan.keep.includes(m.id));
        // Damaged backups are neither removed nor collected: an operator decides (they are listed).
        const freedBytes = await collectGarbage(o.store, kept, damaged);
        const referenced = new Set(kept.flatMap((m) => m.files.map((f) => f.sha256)));
        const now = o.now().getTime();
        await writeVerified(o.store, await readVerified(o.store, now), referenced).catch(() => undefined);
        (ctx.logger ?? o.logger).info('backup-rocksdb: pruned', { removed: plan.remove, freedBytes });
        return { removed: plan.remove, kept: plan.keep, freedBytes };
      });
    },

    async exportBundle(id: string, file: string, ctx: OperationContext = {}) {
      const manifest = await readManifest(o.store, id);
      if (typeof file !== 'string' || file === '' || (await lstatOrUndefined(file))) {
        throw new ConfigInvalidError(
          `exportBundle: ${file} exists or is not a path; nothing is overwritten`,
          {
            plugin: 'backup-rocksdb',
          },
        );
      }
      return writeBundle(o.store, manifest, file, {
        gzipLevel: o.gzipLevel,
        chunkSize: o.chunkSize,
        signal: ctx.signal,
      }).catch((err: unknown) => {
        throw typed(err, 'export');
      });
    },

    async importBundle(file: string, ctx: OperationContext = {}): Promise<BackupInfo> {
      if (typeof file !== 'string' || !(await lstatOrUndefined(file))?.isFile()) {
        throw new ConfigInvalidError(`importBundle: ${String(file)} is not a file`, {
          plugin: 'backup-rocksdb',
        });
      }
      return locked(o, async () => {
        const key = await ensureKey(o.store);
        const exists = async (id: string) =>
          (await o.store.readDoc(`backups/${id}/manifest.json`)) !== undefined;
        const { manifest, added } = await readBundle(o.store, file, {
          chunkSize: o.chunkSize,
          signal: ctx.signal,
          exists,
          limits: o.importLimits,
        }).catch((err: unknown) => {
          throw typed(err, 'import');
        });
        try {
          await commitManifest(o.store, manifest, key);
        } catch (err) {
          for (const sha256 of added) await o.store.removeBlob(sha256).catch(() => undefined);
          throw typed(err, 'import');
        }
        return toBackupInfo(manifest, undefined);
      });
    },
  } satisfies RocksdbBackup;
  return provider;
}
