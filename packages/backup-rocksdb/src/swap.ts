import { readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import type { Logger } from '@codegraph/release-core';
import { BackupFailedError } from '@codegraph/release-core';
import { BACKUP_ID } from './manifest.js';
import { fsyncDir, lstatOrUndefined, writeFileAtomic } from './utils/fs.js';

// The swap of several directories is made crash-atomic with an intent record. Everything is staged and
// checked first; then the intent (every rename to do) is written durably, and only then are directories
// renamed. Each step is idempotent, so whoever finds an intent (the next restore or backup) rolls it
// forward to the end: a crash at any point leaves the old data (no intent yet) or, once recovered, the new.

/** One directory to swap: `path` moves to `aside` (when it existed), `staging` moves to `path`. */
export interface SwapStep {
  name: string;
  path: string;
  staging: string;
  aside?: string;
}

/** The record written before the first rename of a restore. */
export interface SwapIntent {
  format: 'codegraph-restore-intent/1';
  id: string;
  steps: SwapStep[];
}

/** Staging directories this process is filling right now (never cleaned as leftovers). */
export const activeStaging = new Set<string>();

/** `.rocksdb.restore-<backup id>-<pid>-<nonce>`: hidden, and naming the process that made it. */
export function stagingName(base: string, id: string, suffix: string): string {
  return `.${base}.restore-${id}-${process.pid}-${suffix}`;
}

export async function writeIntent(file: string, intent: SwapIntent): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(intent, null, 2)}\n`, 0o600);
}

function failed(message: string, file: string): BackupFailedError {
  return new BackupFailedError(`${message}; the restore record is ${file}`, {
    plugin: 'backup-rocksdb',
    phase: 'restore',
    details: { intent: file },
  });
}

async function readIntent(file: string): Promise<SwapIntent | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let intent: SwapIntent;
  try {
    intent = JSON.parse(text) as SwapIntent;
  } catch {
    throw failed('an interrupted restore left a record that cannot be read', file);
  }
  const abs = (p: unknown) => typeof p === 'string' && isAbsolute(p);
  const ok =
    intent?.format === 'codegraph-restore-intent/1' &&
    Array.isArray(intent.steps) &&
    intent.steps.every(
      (s) =>
        abs(s?.path) &&
        abs(s.staging) &&
        dirname(s.staging) === dirname(s.path) &&
        basename(s.staging).startsWith(`.${basename(s.path)}.restore-`) &&
        (s.aside === undefined || (abs(s.aside) && dirname(s.aside) === dirname(s.path))),
    );
  if (!ok) throw failed('an interrupted restore left a record that is not a restore record', file);
  return intent;
}

/**
 * Carries out (or finishes) the swap an intent describes, then removes the intent. Does nothing when there
 * is no intent.
 */
export async function applySwap(file: string, logger: Logger): Promise<void> {
  const intent = await readIntent(file);
  if (!intent) return;
  for (const step of intent.steps) {
    if (!(await lstatOrUndefined(step.staging))) continue; // this step is done
    const live = await lstatOrUndefined(step.path);
    if (live) {
      if (!step.aside || (await lstatOrUndefined(step.aside))) {
        throw failed(
          `restoring ${step.name}: ${step.path} reappeared while the restore was interrupted; ` +
            `move it away, then run the restore again`,
          file,
        );
      }
      await rename(step.path, step.aside);
    }
    await rename(step.staging, step.path);
    await fsyncDir(dirname(step.path));
    logger.info('backup-rocksdb: swapped in a restored directory', { name: step.name, path: step.path });
  }
  await rm(file, { force: true });
  await fsyncDir(dirname(file));
}

const STAGING = /^\.(.+)\.restore-([0-9]{8}T[0-9]{9}Z-[0-9a-f]{12})-(?:([0-9]+)-)?[0-9a-f]{12}$/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the hidden staging copies interrupted restores left beside each destination. A copy made by a
 * process that is still running (another restore staging right now) is left alone.
 */
export async function cleanStaging(destinations: readonly string[], logger: Logger): Promise<number> {
  let removed = 0;
  for (const path of destinations) {
    const names = await readdir(dirname(path)).catch(() => [] as string[]);
    for (const name of names) {
      const m = STAGING.exec(name);
      if (!m || m[1] !== basename(path) || !BACKUP_ID.test(m[2] ?? '')) continue;
      const pid = m[3] === undefined ? undefined : Number(m[3]);
      const full = join(dirname(path), name);
      if (pid !== undefined && pid !== process.pid && alive(pid)) continue;
      if (activeStaging.has(full)) continue;
      await rm(full, { recursive: true, force: true });
      logger.info('backup-rocksdb: removed the staging copy of an interrupted restore', { name });
      removed++;
    }
  }
  return removed;
}
