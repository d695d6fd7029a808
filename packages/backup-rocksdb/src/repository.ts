import type { Logger } from '@codegraph/release-core';
import { BackupCorruptError, BackupNotFoundError } from '@codegraph/release-core';
import type { BlobStore } from './blob-store.js';
import {
  BACKUP_ID,
  type BackupManifest,
  formatSha256Sums,
  type ManifestFile,
  parseManifest,
  type VerificationRecord,
} from './manifest.js';
import { type FoundFile, hashFile, mapLimit } from './utils/fs.js';

// Repository layout on any blob store:
//   blobs (content-addressed)      -> the store's own blob area
//   backups/<id>/SHA256SUMS        -> `sha256sum -c` listing, written first
//   backups/<id>/manifest.json     -> written last: its presence is what makes a backup valid
//   backups/<id>/verification.json -> the last verification's outcome

const manifestKey = (id: string) => `backups/${id}/manifest.json`;
const sumsKey = (id: string) => `backups/${id}/SHA256SUMS`;
const verificationKey = (id: string) => `backups/${id}/verification.json`;

/** Reads one backup's manifest; an unknown or malformed id is {@link BackupNotFoundError}. */
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
  return parseManifest(data, `${store.location} backups/${id}/manifest.json`);
}

/** Every committed backup, oldest first. Unreadable manifests are logged and left out. */
export async function listManifests(store: BlobStore, logger?: Logger): Promise<BackupManifest[]> {
  const keys = await store.listDocs('backups');
  const out: BackupManifest[] = [];
  for (const key of keys) {
    const match = /^backups\/([^/]+)\/manifest\.json$/.exec(key);
    if (!match || !BACKUP_ID.test(match[1] ?? '')) continue;
    try {
      const data = await store.readDoc(key);
      if (data) out.push(parseManifest(data, `${store.location} ${key}`));
    } catch (err) {
      logger?.warn('backup-rocksdb: skipping an unreadable manifest', { key, error: String(err) });
    }
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}

/** Makes a backup valid: the checksum listing first, the manifest last (atomically). */
export async function commitManifest(store: BlobStore, manifest: BackupManifest): Promise<void> {
  await store.writeDoc(sumsKey(manifest.id), formatSha256Sums(manifest.files));
  await store.writeDoc(manifestKey(manifest.id), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Removes a backup's records (the manifest first, so a crash leaves it invalid rather than half there). */
export async function removeBackupRecords(store: BlobStore, id: string): Promise<void> {
  await store.removeDoc(manifestKey(id));
  await store.removeDoc(verificationKey(id));
  await store.removeDoc(sumsKey(id));
}

export async function readVerification(
  store: BlobStore,
  id: string,
): Promise<VerificationRecord | undefined> {
  const data = await store.readDoc(verificationKey(id));
  if (!data) return undefined;
  try {
    return JSON.parse(Buffer.from(data).toString('utf8')) as VerificationRecord;
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
 * Stores files as blobs, several at once, each copied and hashed in one pass. A file that the previous
 * backup held under the same path and size is hashed first (read only): when its blob is already stored,
 * nothing is written. This makes every backup after the first incremental.
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
  },
): Promise<{ files: ManifestFile[]; writtenBytes: number }> {
  let writtenBytes = 0;
  const io = { signal: options.signal, chunkSize: options.chunkSize };
  const stored = await mapLimit(files, options.concurrency, async (file) => {
    const before = previous.get(file.target);
    if (before && before.size === file.size && (await store.statBlob(before.sha256)) === before.size) {
      const digest = await hashFile(file.absolute, io);
      if (digest.sha256 === before.sha256) {
        const entry: ManifestFile = {
          path: file.target,
          size: digest.size,
          sha256: digest.sha256,
          mode: file.mode,
        };
        options.onFile?.(entry, false);
        return entry;
      }
    }
    const put = await store.putFile(file.absolute, io);
    if (put.written) writtenBytes += put.size;
    const entry: ManifestFile = { path: file.target, size: put.size, sha256: put.sha256, mode: file.mode };
    options.onFile?.(entry, put.written);
    return entry;
  });
  return { files: stored, writtenBytes };
}

/** Deletes blobs no remaining backup references, leftovers of interrupted writes, and orphan records. */
export async function collectGarbage(store: BlobStore, keep: readonly BackupManifest[]): Promise<number> {
  const referenced = new Set<string>();
  for (const m of keep) for (const f of m.files) referenced.add(f.sha256);
  const kept = new Set(keep.map((m) => m.id));
  const keys = await store.listDocs('backups');
  const stray = keys.find((key) => key.endsWith('/manifest.json') && !kept.has(key.split('/')[1] ?? ''));
  if (stray) {
    // A manifest we could not read still protects its blobs: collecting now could lose a backup.
    throw new BackupCorruptError(
      `${store.location} ${stray} cannot be read; repair or move it away before garbage collection`,
      { plugin: 'backup-rocksdb', details: { key: stray } },
    );
  }
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
