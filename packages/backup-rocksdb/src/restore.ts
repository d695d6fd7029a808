import { mkdir, readdir, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { BackupInfo, Logger, RestoreRequest } from '@codegraph/release-core';
import { BackupFailedError, BackupNotFoundError, ConfigInvalidError } from '@codegraph/release-core';
import type { BlobStore } from './blob-store.js';
import { type BackupManifest, componentOf } from './manifest.js';
import { type IoOptions, materialize, verifyStaged } from './materialize.js';
import { activeStaging, applySwap, cleanStaging, type SwapIntent, stagingName, writeIntent } from './swap.js';
import { lstatOrUndefined, nonce } from './utils/fs.js';
import { lockHolder } from './utils/lock.js';

/**
 * What a restore did with one component of the backup.
 *
 * @example
 * ```ts
 * // { name: 'rocksdb', path: '/opt/codegraph/data/rocksdb', movedAside: '/opt/codegraph/data/rocksdb.pre-recovery.20261125_184500' }
 * ```
 */
export interface RestoredComponent {
  /** `rocksdb` or an extra directory's name. */
  name: string;
  /** Where it was restored, or undefined when the provider has no destination for it. */
  path?: string;
  /** Where the data that was there before went (never deleted). */
  movedAside?: string;
}

/** Rejects a malformed restore request ({@link ConfigInvalidError}) before anything is locked or touched. */
export function checkRestoreRequest(request: RestoreRequest): void {
  try {
    selectBackup([], request);
  } catch (err) {
    if (!(err instanceof BackupNotFoundError)) throw err; // well formed: nothing to choose from yet
  }
}

/**
 * Picks the backup a restore request names: `id` exactly, or `at`, the newest backup taken at or before that
 * time. Never falls back to another backup. Input errors are {@link ConfigInvalidError}; no match is
 * {@link BackupNotFoundError}.
 */
export function selectBackup(backups: readonly BackupInfo[], request: RestoreRequest): BackupInfo {
  const hasId = request?.id !== undefined;
  const hasAt = request?.at !== undefined;
  if (hasId === hasAt) {
    throw new ConfigInvalidError(
      'restore needs exactly one of `id` (a backup id) and `at` (a point in time)',
      {
        plugin: 'backup-rocksdb',
        phase: 'restore',
      },
    );
  }
  if (hasId) {
    const found = backups.find((b) => b.id === request.id);
    if (!found) {
      throw new BackupNotFoundError(
        `no backup has the id ${JSON.stringify(request.id)}; list() shows the ids`,
        {
          plugin: 'backup-rocksdb',
          phase: 'restore',
          details: { id: request.id },
        },
      );
    }
    return found;
  }
  const at = request.at instanceof Date ? request.at : new Date(String(request.at));
  if (Number.isNaN(at.getTime())) {
    throw new ConfigInvalidError(`restore: \`at\` is not a time: ${JSON.stringify(request.at)}`, {
      plugin: 'backup-rocksdb',
      phase: 'restore',
    });
  }
  let best: BackupInfo | undefined;
  for (const b of backups) {
    const t = Date.parse(b.createdAt);
    if (t <= at.getTime() && (!best || t >= Date.parse(best.createdAt))) best = b;
  }
  if (!best) {
    throw new BackupNotFoundError(`no backup was taken at or before ${at.toISOString()}`, {
      plugin: 'backup-rocksdb',
      phase: 'restore',
      details: { at: at.toISOString() },
    });
  }
  return best;
}

/** `data.pre-recovery.20261125_184500`, as the runbook names it; a suffix keeps it unique. */
async function asideName(path: string, now: Date): Promise<string> {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
  let candidate = `${path}.pre-recovery.${stamp}`;
  for (let i = 2; await lstatOrUndefined(candidate); i++) candidate = `${path}.pre-recovery.${stamp}-${i}`;
  return candidate;
}

/**
 * Restores a backup's components to their destinations: refused while the database's LOCK is held; every
 * component staged in a new sibling directory and checked there (every file hashed as it is on disk, nothing
 * more and nothing less); then an intent record is written and the directories are swapped (each existing
 * one moved aside, the staged one renamed into place). A crash during the swap is rolled forward from the
 * intent by the next restore or backup, so the data is either all old or all new. Nothing is deleted.
 */
export async function restoreManifest(
  store: BlobStore,
  manifest: BackupManifest,
  destinations: Readonly<Record<string, string>>,
  io: IoOptions & { logger: Logger; now: () => Date; intent: string },
): Promise<RestoredComponent[]> {
  const names = [...new Set(manifest.files.map((f) => componentOf(f.path)))].sort();
  const plan = names.map((name) => ({
    name,
    path: destinations[name] ? resolve(destinations[name]) : undefined,
  }));

  for (const { name, path } of plan) {
    if (!path) continue;
    const st = await lstatOrUndefined(path);
    if (st && !st.isDirectory()) {
      throw new ConfigInvalidError(`restore destination ${path} for ${name} exists and is not a directory`, {
        plugin: 'backup-rocksdb',
        phase: 'restore',
      });
    }
    const holder = st ? await lockHolder(path) : undefined;
    if (holder) {
      throw new BackupFailedError(
        `restore refused: process ${holder.pid} holds ${path}/LOCK; stop the service before restoring`,
        { plugin: 'backup-rocksdb', phase: 'restore', details: { path, pid: holder.pid } },
      );
    }
  }

  const staged: SwapIntent['steps'] = [];
  try {
    for (const { name, path } of plan) {
      if (!path) {
        io.logger.warn('backup-rocksdb: no destination for a component of the backup; not restored', {
          name,
        });
        continue;
      }
      await mkdir(dirname(path), { recursive: true });
      const staging = resolve(dirname(path), stagingName(basename(path), manifest.id, nonce()));
      staged.push({ name, path, staging });
      activeStaging.add(staging);
      const files = manifest.files.filter((f) => componentOf(f.path) === name);
      await materialize(store, files, staging, `${name}/`, { ...io, sync: true });
      await verifyStaged(files, staging, `${name}/`, io);
    }
    for (const step of staged) {
      if (await lstatOrUndefined(step.path)) step.aside = await asideName(step.path, io.now());
    }
    await writeIntent(io.intent, { format: 'codegraph-restore-intent/1', id: manifest.id, steps: staged });
  } catch (err) {
    // Staging directories are ours and hold copies only; the live data has not been touched.
    for (const s of staged) await rm(s.staging, { recursive: true, force: true });
    for (const s of staged) activeStaging.delete(s.staging);
    throw err;
  }

  try {
    await applySwap(io.intent, io.logger);
  } finally {
    for (const s of staged) activeStaging.delete(s.staging);
  }
  const done: RestoredComponent[] = plan.filter((p) => !p.path).map((p) => ({ name: p.name }));
  for (const { name, path, aside } of staged) {
    io.logger.info('backup-rocksdb: restored', { name, path, movedAside: aside });
    done.push({ name, path, ...(aside ? { movedAside: aside } : {}) });
  }
  return done;
}

/** Finishes a restore a crash interrupted, then removes staging copies no process is using. */
export async function recoverRestores(
  intent: string,
  destinations: Readonly<Record<string, string>>,
  logger: Logger,
): Promise<void> {
  await applySwap(intent, logger);
  // A crash while the intent record itself was being written leaves its temporary file.
  const leftover = `.${basename(intent)}.tmp-`;
  for (const name of await readdir(dirname(intent)).catch(() => [] as string[])) {
    if (name.startsWith(leftover) && /^[0-9a-f]{12}$/.test(name.slice(leftover.length))) {
      await rm(join(dirname(intent), name), { force: true });
    }
  }
  await cleanStaging(Object.values(destinations), logger);
}
