import { hostname } from 'node:os';
import type {
  BackupInfo,
  BackupProvider,
  BackupRequest,
  BackupVerification,
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
import { readBundle, writeBundle } from './bundle.js';
import { type BackupManifest, componentOf, newBackupId, toBackupInfo } from './manifest.js';
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
import { type RestoredComponent, restoreManifest, selectBackup } from './restore.js';
import { checkRetentionPolicy, planRetention } from './retention.js';
import { checkAbort, lstatOrUndefined, walkFiles } from './utils/fs.js';
import { verifyManifest } from './verify.js';

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
  for (const [name, dir] of Object.entries(o.extras)) {
    if (!(await lstatOrUndefined(dir))?.isDirectory()) {
      throw new ConfigInvalidError(`extra ${name}: ${dir} is not a directory`, { plugin: 'backup-rocksdb' });
    }
    // Refuses links and special files now, before the service is asked to pause or checkpoint.
    await walkFiles(dir);
  }
  checkAbort(ctx.signal, 'backup');
  const release = await o.store.lock();
  try {
    await o.store.cleanTemporary();
    const previous = (await listManifests(o.store, logger)).at(-1);
    const hints = new Map((previous?.files ?? []).map((f) => [f.path, f]));
    const io = { concurrency: o.concurrency, chunkSize: o.chunkSize, signal: ctx.signal };
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
      await commitManifest(o.store, manifest);
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

async function infos(o: ResolvedOptions, ctx: OperationContext): Promise<BackupInfo[]> {
  const manifests = await listManifests(o.store, ctx.logger ?? o.logger);
  const out = await Promise.all(
    manifests.map(async (m) => toBackupInfo(m, await readVerification(o.store, m.id))),
  );
  return out.reverse();
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
    ): Promise<BackupVerification> {
      const manifest = await readManifest(o.store, id);
      const result = await verifyManifest(o.store, manifest, opts.level ?? 'checksum', {
        ...io(opts),
        ldb: o.ldb,
      });
      await writeVerification(o.store, id, { ok: result.ok, level: result.level, at: o.now().toISOString() });
      return result;
    },

    async restore(request: RestoreRequest, ctx: OperationContext = {}): Promise<RocksdbRestoreResult> {
      const logger = ctx.logger ?? o.logger;
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
      const destinations = { rocksdb: o.db, ...o.extras };
      const components = await restoreManifest(o.store, manifest, destinations, {
        ...io(ctx),
        logger,
        now: o.now,
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
    },

    async prune(policy: RetentionPolicy, ctx: OperationContext = {}): Promise<PruneResult> {
      checkRetentionPolicy(policy);
      const release = await o.store.lock();
      try {
        const manifests = await listManifests(o.store, ctx.logger ?? o.logger);
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
        const freedBytes = await collectGarbage(o.store, kept);
        (ctx.logger ?? o.logger).info('backup-rocksdb: pruned', { removed: plan.remove, freedBytes });
        return { removed: plan.remove, kept: plan.keep, freedBytes };
      } finally {
        await release();
      }
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
      const release = await o.store.lock();
      try {
        const exists = async (id: string) =>
          (await o.store.readDoc(`backups/${id}/manifest.json`)) !== undefined;
        const manifest = await readBundle(o.store, file, {
          chunkSize: o.chunkSize,
          signal: ctx.signal,
          exists,
        }).catch((err: unknown) => {
          throw typed(err, 'import');
        });
        await commitManifest(o.store, manifest);
        return toBackupInfo(manifest, undefined);
      } finally {
        await release();
      }
    },
  } satisfies RocksdbBackup;
  return provider;
}
