import { createHash } from 'node:crypto';
import { link, mkdir, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BackupCorruptError } from '@codegraph/release-core';
import type { BlobStore } from './blob-store.js';
import type { ManifestFile } from './manifest.js';
import { checkAbort, copyAndHash, type Digest, fsyncDir, hashFile, mapLimit } from './utils/fs.js';

/** Streaming options shared by verify and restore. */
export interface IoOptions {
  concurrency: number;
  chunkSize: number;
  signal?: AbortSignal | undefined;
}

/** Hashes a stored blob in one streaming pass. */
export async function hashBlob(store: BlobStore, sha256: string, io: IoOptions): Promise<Digest> {
  const local = store.localPath?.(sha256);
  if (local) return hashFile(local, io);
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of store.readBlob(sha256, io)) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: hash.digest('hex'), size };
}

async function copyBlob(store: BlobStore, file: ManifestFile, dst: string, io: IoOptions): Promise<Digest> {
  const local = store.localPath?.(file.sha256);
  if (local) return copyAndHash(local, dst, { ...io, mode: file.mode || 0o644 });
  const handle = await open(dst, 'wx', file.mode || 0o644);
  try {
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of store.readBlob(file.sha256, io)) {
      checkAbort(io.signal, `restoring ${file.path}`);
      hash.update(chunk);
      size += chunk.byteLength;
      let off = 0;
      while (off < chunk.byteLength) off += (await handle.write(chunk, off)).bytesWritten;
    }
    await handle.sync();
    return { sha256: hash.digest('hex'), size };
  } finally {
    await handle.close();
  }
}

/**
 * Writes `files` under `root` (paths relative to `strip`), hashing each in the same pass as the copy; a file
 * whose bytes differ from the manifest fails the whole call with {@link BackupCorruptError} naming it.
 * With `hardLink`, local blobs are linked instead of copied (read-only uses such as a secondary-instance scan).
 */
export async function materialize(
  store: BlobStore,
  files: readonly ManifestFile[],
  root: string,
  strip: string,
  io: IoOptions & { hardLink?: boolean },
): Promise<void> {
  const dirs = new Set<string>([root]);
  for (const f of files) dirs.add(dirname(join(root, f.path.slice(strip.length))));
  for (const d of [...dirs].sort()) await mkdir(d, { recursive: true });
  await mapLimit(files, io.concurrency, async (file) => {
    const dst = join(root, file.path.slice(strip.length));
    const local = io.hardLink ? store.localPath?.(file.sha256) : undefined;
    if (local) {
      await link(local, dst);
      return;
    }
    const got = await copyBlob(store, file, dst, io);
    if (got.sha256 !== file.sha256 || got.size !== file.size) {
      throw new BackupCorruptError(
        `${file.path} does not match its checksum in the backup (stored blob ${file.sha256}); restore another backup`,
        { plugin: 'backup-rocksdb', phase: 'restore', details: { path: file.path, sha256: file.sha256 } },
      );
    }
  });
  for (const d of [...dirs].sort().reverse()) await fsyncDir(d);
}
