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

const REASONS = new Set(['pre-release', 'pre-rollback', 'scheduled', 'manual', 'pre-recovery']);
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
/** Longest free-text value (version, label, host...) a manifest may carry. */
const MAX_TEXT = 4096;

type Bad = (what: string) => never;
const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const count = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const text = (v: unknown): v is string => typeof v === 'string' && v.length <= MAX_TEXT;

function checkFiles(files: unknown, bad: Bad): ManifestFile[] {
  if (!Array.isArray(files) || files.length === 0) bad('no files');
  const paths = new Set<string>();
  for (const f of files as unknown[]) {
    if (!isRecord(f)) bad('a file entry is not an object');
    const { path, size, sha256, mode } = f as Record<string, unknown>;
    if (typeof path !== 'string' || path.length > 1024 || !isSafeRelativePath(path) || !path.includes('/')) {
      bad(`unsafe path ${JSON.stringify(path)}`);
    }
    const p = path as string;
    if (!count(size)) bad(`bad size for ${p}`);
    if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) bad(`bad sha256 for ${p}`);
    if (!Number.isSafeInteger(mode) || (mode as number) < 0 || (mode as number) > 0o7777) {
      bad(`bad mode for ${p}`);
    }
    if (paths.has(p)) bad(`${p} is listed twice`);
    paths.add(p);
  }
  // A path may not also be a directory of another one (`rocksdb/a` and `rocksdb/a/b`).
  for (const p of paths) {
    for (let i = p.indexOf('/'); i !== -1; i = p.indexOf('/', i + 1)) {
      if (paths.has(p.slice(0, i))) bad(`${p.slice(0, i)} is both a file and a directory`);
    }
  }
  return files as ManifestFile[];
}

function checkMetadata(m: Record<string, unknown>, files: ManifestFile[], bad: Bad): void {
  const meta = m['metadata'];
  if (!isRecord(meta)) bad('no metadata');
  const { host, source, sizeBytes, writtenBytes, components } = meta as Record<string, unknown>;
  if (!text(host) || !text(source)) bad('bad metadata host or source');
  const total = files.reduce((n, f) => n + f.size, 0);
  if (!count(sizeBytes) || sizeBytes !== total) bad('metadata.sizeBytes is not the sum of the files');
  if (!count(writtenBytes) || (writtenBytes as number) > total) bad('bad metadata.writtenBytes');
  if (!isRecord(components)) bad('bad metadata.components');
  const expected: Record<string, { files: number; sizeBytes: number }> = {};
  for (const f of files) {
    const c = expected[componentOf(f.path)] ?? { files: 0, sizeBytes: 0 };
    expected[componentOf(f.path)] = { files: c.files + 1, sizeBytes: c.sizeBytes + f.size };
  }
  const got = components as Record<string, unknown>;
  const names = Object.keys(got).sort();
  if (names.join('/') !== Object.keys(expected).sort().join('/'))
    bad('metadata.components differ from the files');
  for (const name of names) {
    const c = got[name];
    if (
      !isRecord(c) ||
      c['files'] !== expected[name]?.files ||
      c['sizeBytes'] !== expected[name]?.sizeBytes
    ) {
      bad(`metadata.components.${name} differs from the files`);
    }
  }
}

/**
 * Parses and checks every field of a manifest read from a store or a bundle, so that nothing downstream
 * (list, restore, retention) meets a malformed one. Throws {@link BackupCorruptError} naming the field.
 */
export function parseManifest(data: Uint8Array, where: string): BackupManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch (err) {
    throw new BackupCorruptError(`${where} is not valid JSON`, { cause: err, plugin: 'backup-rocksdb' });
  }
  const bad: Bad = (what) => {
    throw new BackupCorruptError(`${where} is not a backup manifest: ${what}`, { plugin: 'backup-rocksdb' });
  };
  if (!isRecord(raw)) bad('not an object');
  const m = raw as Record<string, unknown>;
  if (m['format'] !== 'codegraph-rocksdb-backup/1') bad('unknown format');
  if (typeof m['id'] !== 'string' || !BACKUP_ID.test(m['id'])) bad('bad id');
  const createdAt = m['createdAt'];
  if (typeof createdAt !== 'string' || !ISO_TIME.test(createdAt) || Number.isNaN(Date.parse(createdAt))) {
    bad('bad createdAt');
  }
  if (typeof m['reason'] !== 'string' || !REASONS.has(m['reason'])) bad('bad reason');
  for (const key of ['version', 'environment'] as const) {
    if (m[key] !== undefined && !text(m[key])) bad(`bad ${key}`);
  }
  const labels = m['labels'];
  if (!isRecord(labels) || Object.keys(labels).length > 256) bad('bad labels');
  for (const [k, v] of Object.entries(labels as Record<string, unknown>)) {
    if (!text(k) || !text(v)) bad(`bad label ${JSON.stringify(k).slice(0, 80)}`);
  }
  const files = checkFiles(m['files'], bad);
  checkMetadata(m, files, bad);
  return raw as unknown as BackupManifest;
}

/** Only the plain permission bits of a file are ever restored (no setuid, setgid or sticky bit). */
export function plainMode(mode: number): number {
  return mode & 0o777 || 0o644;
}

/** A backup's creation time from its id (`20261125T184500123Z-…`), for a backup whose manifest is damaged. */
export function timeOfId(id: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z/.exec(id);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z` : new Date(0).toISOString();
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

/** What `list()` shows of a backup whose records cannot be trusted. */
export function damagedInfo(id: string, reason: string): BackupInfo {
  return {
    id,
    createdAt: timeOfId(id),
    reason: 'manual',
    labels: {},
    sizeBytes: 0,
    files: 0,
    verified: false,
    damaged: { reason },
  };
}
