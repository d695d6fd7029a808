import type { BackupInfo, BackupReason, VerifyLevel } from '@codegraph/release-core';
import { BackupCorruptError } from '@codegraph/release-core';
import { nonce } from './utils/fs.js';

/**
 * One file of a backup: where it goes back, and which blob holds it.
 *
 * @example
 * ```ts
 * const file: ManifestFile = { path: 'rocksdb/000012.sst', size: 67108864, sha256: '9f…', mode: 0o644 }
 * ```
 */
export interface ManifestFile {
  /** Path inside the backup: `rocksdb/000012.sst`, `vector/index.faiss`, `config/codegraph.toml`. */
  path: string;
  size: number;
  sha256: string;
  /** Permission bits. */
  mode: number;
}

/**
 * The record of one backup, stored as `backups/<id>/manifest.json` (its presence makes the backup valid).
 *
 * @example
 * ```ts
 * const manifest: BackupManifest = JSON.parse(await readFile(`${repo}/backups/${id}/manifest.json`, 'utf8'))
 * ```
 */
export interface BackupManifest {
  format: 'codegraph-rocksdb-backup/1';
  id: string;
  createdAt: string;
  reason: BackupReason;
  version?: string;
  environment?: string;
  labels: Record<string, string>;
  /** The seeds' metadata record: host, source, sizes. */
  metadata: {
    host: string;
    source: string;
    sizeBytes: number;
    /** Bytes of this backup that were new to the repository. */
    writtenBytes: number;
    components: Record<string, { files: number; sizeBytes: number }>;
  };
  files: ManifestFile[];
}

/** The last verification of a backup, stored beside its manifest. */
export interface VerificationRecord {
  ok: boolean;
  level: VerifyLevel;
  at: string;
}

/** Names the component a backup path belongs to (`rocksdb`, `vector`...). */
export function componentOf(path: string): string {
  return path.slice(0, path.indexOf('/'));
}

/** A time-sortable backup id: `20261125T184500123Z-1a2b3c4d5e6f`. */
export function newBackupId(at: Date): string {
  return `${at.toISOString().replace(/[-:.]/g, '')}-${nonce()}`;
}

/** Ids are used as directory and tar entry names, so they are checked before use. */
export const BACKUP_ID = /^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{12}$/;

/** `sha256sum -c` compatible listing of a backup's files. */
export function formatSha256Sums(files: readonly ManifestFile[]): string {
  return files.map((f) => `${f.sha256}  ${f.path}\n`).join('');
}

const SAFE_PATH = /^(?!\/)(?!.*(^|\/)\.\.?(\/|$))[^\0\\]+$/;

/** Whether a backup-relative path stays inside the backup (no `..`, not absolute, no backslashes). */
export function isSafeRelativePath(path: string): boolean {
  return SAFE_PATH.test(path) && !path.includes('//') && !path.endsWith('/');
}

/** Parses and checks a manifest read from a store or a bundle. */
export function parseManifest(data: Uint8Array, where: string): BackupManifest {
  let m: BackupManifest;
  try {
    m = JSON.parse(Buffer.from(data).toString('utf8')) as BackupManifest;
  } catch (err) {
    throw new BackupCorruptError(`${where} is not valid JSON`, { cause: err, plugin: 'backup-rocksdb' });
  }
  const bad = (what: string): never => {
    throw new BackupCorruptError(`${where} is not a backup manifest: ${what}`, { plugin: 'backup-rocksdb' });
  };
  if (m?.format !== 'codegraph-rocksdb-backup/1') bad('unknown format');
  if (typeof m.id !== 'string' || !BACKUP_ID.test(m.id)) bad('bad id');
  if (Number.isNaN(Date.parse(m.createdAt))) bad('bad createdAt');
  if (!Array.isArray(m.files)) bad('no files');
  for (const f of m.files) {
    if (!isSafeRelativePath(f?.path) || !f.path.includes('/')) bad(`unsafe path ${JSON.stringify(f?.path)}`);
    if (!Number.isSafeInteger(f.size) || f.size < 0) bad(`bad size for ${f.path}`);
    if (!/^[0-9a-f]{64}$/.test(f.sha256)) bad(`bad sha256 for ${f.path}`);
  }
  return m;
}

/** What `list()` shows of a manifest. */
export function toBackupInfo(m: BackupManifest, verification: VerificationRecord | undefined): BackupInfo {
  return {
    id: m.id,
    createdAt: m.createdAt,
    reason: m.reason,
    ...(m.version !== undefined ? { version: m.version } : {}),
    labels: { ...m.labels },
    sizeBytes: m.metadata.sizeBytes,
    files: m.files.length,
    ...(verification ? { verified: verification.ok } : {}),
  };
}
