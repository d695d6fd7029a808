import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackupVerification, VerifyLevel } from '@codegraph/release-core';
import { BackupCorruptError, ConfigInvalidError, ReleaseError } from '@codegraph/release-core';
import type { BlobStore } from './blob-store.js';
import type { BackupManifest } from './manifest.js';
import { hashBlob, type IoOptions, materialize } from './materialize.js';
import { streamTool } from './tool.js';
import { mapLimit } from './utils/fs.js';

type Problem = BackupVerification['problems'][number];

/** The levels in order; each includes the ones before it. */
export const VERIFY_LEVELS: readonly VerifyLevel[] = ['presence', 'checksum', 'scan'];

/**
 * Verifies a backup: `presence` (every blob there, with its size), `checksum` (every blob's SHA-256),
 * `scan` (checksum, then a full read of the database with `ldb scan` opened as a secondary instance, which
 * catches corruption the source database already had when it was backed up).
 */
/**
 * A verification of a backup kept in several copies ({@link BlobStore.copies}, e.g. local and offsite). Each
 * copy is checked on its own and reported in `copies`; `ok` and `problems` say whether the backup can be
 * restored intact, that is whether every file is good in at least one copy (a restore reads each blob from a
 * copy that holds it intact).
 *
 * @example
 * ```ts
 * const v = await backup.verify(id) // v.copies: [{ location: '/backups', ok: false, problems }, { location: 's3://…', ok: true, problems: [] }]
 * ```
 */
export interface CopiesVerification extends BackupVerification {
  copies?: Array<{ location: string; ok: boolean; problems: Problem[] }>;
}

/** Verifies a backup in its store, and in each copy of a replicated store. */
export async function verifyBackup(
  store: BlobStore,
  manifest: BackupManifest,
  level: VerifyLevel,
  io: IoOptions & { ldb: string },
): Promise<CopiesVerification> {
  const copies = store.copies?.() ?? [];
  if (copies.length === 0) return verifyManifest(store, manifest, level, io);
  const blobLevel = level === 'scan' ? 'checksum' : level;
  const reports: NonNullable<CopiesVerification['copies']> = [];
  for (const copy of copies) {
    const r = await verifyManifest(copy, manifest, blobLevel, io);
    reports.push({ location: copy.location, ok: r.ok, problems: r.problems });
  }
  // A file is a problem of the backup only when no copy holds it intact.
  const problems: Problem[] = [];
  for (const first of reports[0]?.problems ?? []) {
    const elsewhere = reports.slice(1).map((r) => r.problems.find((p) => p.path === first.path));
    if (elsewhere.every((p) => p !== undefined)) {
      const details = [first, ...elsewhere].map((p, i) => `${reports[i]?.location}: ${p?.detail}`);
      problems.push({ ...first, detail: details.join('; ') });
    }
  }
  // The database scan reads through the replicated store, which takes each blob from a good copy.
  if (level === 'scan' && problems.length === 0) {
    const scan = await scanDatabase(store, manifest, io);
    if (scan) problems.push(scan);
  }
  problems.sort((a, b) => a.path.localeCompare(b.path));
  return { id: manifest.id, ok: problems.length === 0, level, problems, copies: reports };
}

export async function verifyManifest(
  store: BlobStore,
  manifest: BackupManifest,
  level: VerifyLevel,
  io: IoOptions & { ldb: string },
): Promise<BackupVerification> {
  if (!VERIFY_LEVELS.includes(level)) {
    throw new ConfigInvalidError(
      `verify level must be one of ${VERIFY_LEVELS.join(', ')}, not ${String(level)}`,
    );
  }
  const problems: Problem[] = [];
  const byBlob = new Map<string, typeof manifest.files>();
  for (const f of manifest.files) byBlob.set(f.sha256, [...(byBlob.get(f.sha256) ?? []), f]);

  const present: string[] = [];
  await mapLimit([...byBlob.keys()], 16, async (sha256) => {
    const size = await store.statBlob(sha256);
    for (const f of byBlob.get(sha256) ?? []) {
      if (size === undefined) {
        problems.push({
          path: f.path,
          problem: 'missing',
          detail: `blob ${sha256} is missing from ${store.location}`,
        });
      } else if (size !== f.size) {
        problems.push({
          path: f.path,
          problem: 'size',
          detail: `blob ${sha256} has ${size} bytes, expected ${f.size}`,
        });
      }
    }
    if (size !== undefined && size === byBlob.get(sha256)?.[0]?.size) present.push(sha256);
  });

  if (level !== 'presence') {
    await mapLimit(present, io.concurrency, async (sha256) => {
      const got = await hashBlob(store, sha256, io);
      if (got.sha256 === sha256) return;
      for (const f of byBlob.get(sha256) ?? []) {
        problems.push({
          path: f.path,
          problem: 'checksum',
          detail: `sha256 is ${got.sha256}, expected ${sha256}`,
        });
      }
    });
  }

  if (level === 'scan' && problems.length === 0) {
    const scan = await scanDatabase(store, manifest, io);
    if (scan) problems.push(scan);
  }
  problems.sort((a, b) => a.path.localeCompare(b.path));
  return { id: manifest.id, ok: problems.length === 0, level, problems };
}

async function scanDatabase(
  store: BlobStore,
  manifest: BackupManifest,
  io: IoOptions & { ldb: string },
): Promise<Problem | undefined> {
  const files = manifest.files.filter((f) => f.path.startsWith('rocksdb/'));
  if (files.length === 0) return undefined;
  const work = await mkdtemp(join(tmpdir(), 'cg-backup-scan-'));
  try {
    const db = join(work, 'db');
    // A secondary instance never writes into the database directory, so local blobs can be linked.
    await materialize(store, files, db, 'rocksdb/', { ...io, hardLink: true });
    // The scan prints every key and value: streamed and discarded, never buffered (a database of any size).
    await streamTool(
      io.ldb,
      [`--db=${db}`, `--secondary_path=${join(work, 'secondary')}`, '--hex', 'scan'],
      io.signal,
    );
    return undefined;
  } catch (err) {
    if (err instanceof ReleaseError && err.code === 'CG_CONFIG_INVALID') throw err;
    if (err instanceof BackupCorruptError) {
      const path = String(err.details?.['path'] ?? 'rocksdb');
      return { path, problem: 'checksum', detail: err.message };
    }
    const message = err instanceof Error ? err.message : String(err);
    // ldb names the damaged file by its path in the scratch copy; report it by its path in the backup.
    const named = new RegExp(`${escapeRegExp(join(work, 'db'))}/([^\\s:]+)`).exec(message);
    return {
      path: named ? `rocksdb/${named[1]}` : 'rocksdb',
      problem: 'scan',
      detail: `ldb scan: ${message.slice(message.indexOf(' failed: ') + 9)}`
        .replaceAll(join(work, 'db'), 'rocksdb')
        .slice(0, 1000),
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
