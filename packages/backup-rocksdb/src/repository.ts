import type { Logger } from '@codegraph/release-core';
import { BackupCorruptError, BackupNotFoundError } from '@codegraph/release-core';
import { checkRecords, macKey, macOf, manifestBytes, manifestKey, readKey, sumsKey } from './auth.js';
import type { BlobStore } from './blob-store.js';
import {
  BACKUP_ID,
  type BackupManifest,
  formatSha256Sums,
  type ManifestFile,
  type VerificationRecord,
} from './manifest.js';
import { hashBlob } from './materialize.js';
import { type FoundFile, hashAndCompare, hashFile, mapLimit } from './utils/fs.js';

// Repository layout on any blob store:
//   blobs (content-addressed)      -> the store's own blob area
//   keys/manifest-hmac             -> the repository's manifest key (private, created on first use)
//   backups/<id>/SHA256SUMS        -> `sha256sum -c` listing, written first
//   backups/<id>/manifest.hmac     -> HMAC-SHA256 of manifest.json under the repository key
//   backups/<id>/manifest.json     -> written last: its presence is what makes a backup exist
//   backups/<id>/verification.json -> the last verification's outcome

const verificationKey = (id: string) => `backups/${id}/verification.json`;

/** A backup whose records cannot be trusted, as {@link listManifests} finds it. */
export interface DamagedBackup {
  id: string;
  reason: string;
  /** Every digest-like string of its manifest and SHA256SUMS: garbage collection keeps these blobs. */
  protects: string[];
}

/**
 * Reads one backup's manifest, checked against SHA256SUMS and its HMAC. An unknown or malformed id is
 * {@link BackupNotFoundError}; records that disagree are {@link BackupCorruptError}.
 */
export async function readManifest(store: BlobStore, id: string): Promise<BackupManifest> {
  if (typeof id !== 'string' || !BACKUP_ID.test(id)) {
    throw new BackupNotFoundError(`no backup has the id ${JSON.stringify(id)}; list() shows the ids`, {
      plugin: 'backup-rocksdb',
      details: { id },
    });
  }
  const data = await store.readDoc(manifestKey(id));
  if (!data) {
    throw new BackupNotFoundError(`no backup ${id} in ${store.location}; list() shows the ids`, {
      plugin: 'backup-rocksdb',
      details: { id },
    });
  }
  return checkRecords(store, id, data, await readKey(store));
}

/**
 * Every backup, oldest first: those whose records agree, and apart those that are damaged (each with its
 * reason). One damaged backup never hides or blocks the others.
 */
export async function listManifests(
  store: BlobStore,
  logger?: Logger,
): Promise<{ manifests: BackupManifest[]; damaged: DamagedBackup[] }> {
  const keys = await store.listDocs('backups');
  const key = await readKey(store);
  const manifests: BackupManifest[] = [];
  const damaged: DamagedBackup[] = [];
  for (const doc of keys) {
    const id = /^backups\/([^/]+)\/manifest\.json$/.exec(doc)?.[1];
    if (!id || !BACKUP_ID.test(id)) continue;
    const data = await store.readDoc(doc);
    if (!data) continue;
    try {
      manifests.push(await checkRecords(store, id, data, key));
    } catch (err) {
      const reason =
        err instanceof BackupCorruptError ? String(err.details?.['reason'] ?? err.message) : String(err);
      logger?.warn('backup-rocksdb: a backup is damaged', { id, reason });
      // Whatever the manifest and SHA256SUMS still name keeps its blob: the backup may be repaired.
      const sums = (await store.readDoc(sumsKey(id)).catch(() => undefined)) ?? new Uint8Array();
      const text = `${Buffer.from(data).toString('latin1')}\n${Buffer.from(sums).toString('latin1')}`;
      const protects = text.match(/[0-9a-f]{64}/g) ?? [];
      damaged.push({ id, reason, protects });
    }
  }
  manifests.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  return { manifests, damaged };
}

/** Makes a backup exist: the checksum listing and the HMAC first, the manifest last (each atomically). */
export async function commitManifest(store: BlobStore, manifest: BackupManifest, key: Buffer): Promise<void> {
  const bytes = manifestBytes(manifest);
  await store.writeDoc(sumsKey(manifest.id), formatSha256Sums(manifest.files));
  await store.writeDoc(macKey(manifest.id), `${macOf(key, bytes)}\n`);
  await store.writeDoc(manifestKey(manifest.id), bytes);
}

/** Removes a backup's records (the manifest first, so a crash leaves it absent rather than half there). */
export async function removeBackupRecords(store: BlobStore, id: string): Promise<void> {
  await store.removeDoc(manifestKey(id));
  await store.removeDoc(verificationKey(id));
  await store.removeDoc(macKey(id));
  await store.removeDoc(sumsKey(id));
}

export async function readVerification(
  store: BlobStore,
  id: string,
): Promise<VerificationRecord | undefined> {
  const data = await store.readDoc(verificationKey(id));
  if (!data) return undefined;
  try {
    const v = JSON.parse(Buffer.from(data).toString('utf8')) as Partial<VerificationRecord>;
    return typeof v.ok === 'boolean' && typeof v.at === 'string' ? (v as VerificationRecord) : undefined;
  } catch {
    return undefined;
  }
}

export async function writeVerification(
  store: BlobStore,
  id: string,
  record: VerificationRecord,
): Promise<void> {
  await store.writeDoc(verificationKey(id), `${JSON.stringify(record)}\n`);
}

/** A file to store, with its path inside the backup. */
export interface SourceFile extends FoundFile {
  /** Path inside the backup (`rocksdb/000012.sst`). */
  target: string;
}

/** Progress of {@link storeFiles}, for logs and for the crash tests. */
export type StoreProgress = (file: ManifestFile, written: boolean) => void;

/**
 * Whether the stored blob `before` still holds exactly the bytes of `file`. A local blob is compared byte
 * for byte in the same pass that hashes the file; a remote one is read back and hashed. Either way a blob
 * that rotted since it was written is found, and the caller writes it again.
 */
async function reusable(
  store: BlobStore,
  file: SourceFile,
  before: ManifestFile,
  io: { signal?: AbortSignal | undefined; chunkSize: number },
): Promise<boolean> {
  if ((await store.statBlob(before.sha256)) !== before.size) return false;
  // A replicated store is compared through its primary's local file (a missing one reads as different).
  const local = store.localPath?.(before.sha256) ?? store.copies?.()[0]?.localPath?.(before.sha256);
  if (local) {
    const r = await hashAndCompare(file.absolute, local, io);
    return r.same && r.sha256 === before.sha256;
  }
  const source = await hashFile(file.absolute, io);
  if (source.sha256 !== before.sha256) return false;
  const stored = await hashBlob(store, before.sha256, { ...io, concurrency: 1 }).catch(() => undefined);
  return stored?.sha256 === before.sha256 && stored.size === before.size;
}

/**
 * Stores files as blobs, several at once, each copied and hashed in one pass. A file that the previous
 * backup held under the same path and size is reused when its stored blob holds exactly its bytes: read back
 * and compared, unless it was known good within `trustMs`. Nothing is written then, which makes every backup
 * after the first incremental. A blob found damaged is written again (healed).
 */
export async function storeFiles(
  store: BlobStore,
  files: readonly SourceFile[],
  previous: ReadonlyMap<string, ManifestFile>,
  options: {
    concurrency: number;
    chunkSize: number;
    signal?: AbortSignal | undefined;
    onFile?: StoreProgress | undefined;
    /** When each blob was last known good (updated here); see verified.ts. */
    verified: Map<string, number>;
    now: number;
    /** How long a blob known good is reused without reading it again. */
    trustMs: number;
  },
): Promise<{ files: ManifestFile[]; writtenBytes: number }> {
  let writtenBytes = 0;
  const io = { signal: options.signal, chunkSize: options.chunkSize };
  const { verified, now } = options;
  const recent = (sha256: string) =>
    (verified.get(sha256) ?? Number.NEGATIVE_INFINITY) >= now - options.trustMs;
  const reuse = async (file: SourceFile, before: ManifestFile): Promise<boolean> => {
    if (!recent(before.sha256)) {
      if (!(await reusable(store, file, before, io))) return false;
      verified.set(before.sha256, now);
      return true;
    }
    if ((await store.statBlob(before.sha256)) !== before.size) return false;
    return (await hashFile(file.absolute, io)).sha256 === before.sha256;
  };
  const stored = await mapLimit(files, options.concurrency, async (file) => {
    const before = previous.get(file.target);
    if (before && before.size === file.size && (await reuse(file, before))) {
      const entry: ManifestFile = {
        path: file.target,
        size: before.size,
        sha256: before.sha256,
        mode: file.mode,
      };
      options.onFile?.(entry, false);
      return entry;
    }
    const put = await store.putFile(file.absolute, io);
    verified.set(put.sha256, now);
    if (put.written) writtenBytes += put.size;
    const entry: ManifestFile = { path: file.target, size: put.size, sha256: put.sha256, mode: file.mode };
    options.onFile?.(entry, put.written);
    return entry;
  });
  return { files: stored, writtenBytes };
}

/**
 * Deletes blobs no remaining backup references, leftovers of interrupted writes, and orphan records. The
 * blobs a damaged backup's manifest names are kept (it may be repaired), and so are its records.
 */
export async function collectGarbage(
  store: BlobStore,
  keep: readonly BackupManifest[],
  damaged: readonly DamagedBackup[],
): Promise<number> {
  const referenced = new Set<string>();
  for (const m of keep) for (const f of m.files) referenced.add(f.sha256);
  for (const d of damaged) for (const sha256 of d.protects) referenced.add(sha256);
  const kept = new Set([...keep.map((m) => m.id), ...damaged.map((d) => d.id)]);
  const keys = await store.listDocs('backups');
  let freed = await store.cleanTemporary();
  // Records of a backup whose manifest never got written (an interrupted create).
  for (const key of keys) {
    if (!kept.has(key.split('/')[1] ?? '')) await store.removeDoc(key);
  }
  const garbage: Array<{ sha256: string; size: number }> = [];
  for await (const blob of store.listBlobs()) if (!referenced.has(blob.sha256)) garbage.push(blob);
  await mapLimit(garbage, 8, async (blob) => {
    await store.removeBlob(blob.sha256);
    freed += blob.size;
  });
  return freed;
}
