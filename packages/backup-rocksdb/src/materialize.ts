import { createHash } from 'node:crypto';
import { chmod, copyFile, link, mkdir, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BackupCorruptError } from '@codegraph/release-core';
import type { BlobStore } from './blob-store.js';
import { type ManifestFile, plainMode } from './manifest.js';
import { checkAbort, type Digest, fsyncDir, hashFile, mapLimit, walkFiles } from './utils/fs.js';

/** Streaming options shared by verify and restore. */
export interface IoOptions {
  concurrency: number;
  chunkSize: number;
  signal?: AbortSignal | undefined;
}

/** Hashes a stored blob in one streaming pass (the store's own check of the name is caught and reported). */
export async function hashBlob(store: BlobStore, sha256: string, io: IoOptions): Promise<Digest> {
  const local = store.localPath?.(sha256);
  if (local) return hashFile(local, io);
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of store.readBlob(sha256, io)) {
      hash.update(chunk);
      size += chunk.byteLength;
    }
  } catch (err) {
    // A store that checks as it reads throws at the end of a damaged blob: report what was read.
    if (err instanceof BackupCorruptError && err.details?.['missing'] !== true) {
      return { sha256: String(err.details?.['actual'] ?? hash.digest('hex')), size };
    }
    throw err;
  }
  return { sha256: hash.digest('hex'), size };
}

function damagedFile(file: ManifestFile, cause?: unknown): BackupCorruptError {
  return new BackupCorruptError(
    `${file.path} does not match its checksum in the backup (stored blob ${file.sha256}); restore another backup`,
    {
      plugin: 'backup-rocksdb',
      phase: 'restore',
      ...(cause !== undefined ? { cause } : {}),
      details: { path: file.path, sha256: file.sha256 },
    },
  );
}

/** Bytes gathered before one write to the staged file: a socket delivers 16 to 64 KiB at a time. */
const WRITE_BATCH = 1 << 20;

async function copyBlob(store: BlobStore, file: ManifestFile, dst: string, io: IoOptions): Promise<void> {
  const local = store.localPath?.(file.sha256);
  if (local) {
    // A kernel copy; the staged file is hashed afterwards (verifyStaged), which checks what is on disk.
    await copyFile(local, dst, 1 /* COPYFILE_EXCL */);
    await chmod(dst, plainMode(file.mode));
    return;
  }
  const handle = await open(dst, 'wx', plainMode(file.mode));
  try {
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      const buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      let off = 0;
      while (off < buf.byteLength) off += (await handle.write(buf, off)).bytesWritten;
    };
    for await (const chunk of store.readBlob(file.sha256, io)) {
      checkAbort(io.signal, `restoring ${file.path}`);
      pending.push(chunk);
      pendingBytes += chunk.byteLength;
      if (pendingBytes >= WRITE_BATCH) await flush();
    }
    if (pendingBytes > 0) await flush();
  } catch (err) {
    if (err instanceof BackupCorruptError) throw damagedFile(file, err);
    throw err;
  } finally {
    await handle.close();
  }
}

/** Makes a staged file durable as soon as it is written, while the next files are still arriving. */
async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `files` under `root` (paths relative to `strip`) with plain permission bits only. With `hardLink`,
 * local blobs are linked instead of copied (read-only uses such as a secondary-instance scan). With `sync`,
 * each file is fsynced as soon as it is written, while the next files are still arriving.
 */
export async function materialize(
  store: BlobStore,
  files: readonly ManifestFile[],
  root: string,
  strip: string,
  io: IoOptions & { hardLink?: boolean; sync?: boolean },
): Promise<void> {
  const dirs = new Set<string>([root]);
  for (const f of files) dirs.add(dirname(join(root, f.path.slice(strip.length))));
  for (const d of [...dirs].sort()) await mkdir(d, { recursive: true });
  await mapLimit(files, io.concurrency, async (file) => {
    checkAbort(io.signal, `restoring ${file.path}`);
    const dst = join(root, file.path.slice(strip.length));
    const local = io.hardLink ? store.localPath?.(file.sha256) : undefined;
    if (local) await link(local, dst);
    else await copyBlob(store, file, dst, io);
    if (io.sync) await syncFile(dst);
  });
}

/**
 * Checks a staged directory before it replaces live data: it holds exactly `files` (nothing more), each
 * with the manifest's size and SHA-256 as read back from the disk; its directories are fsynced (the files
 * were, as they were staged: {@link materialize} with `sync`). A difference is {@link BackupCorruptError}
 * naming the file.
 */
export async function verifyStaged(
  files: readonly ManifestFile[],
  root: string,
  strip: string,
  io: IoOptions,
): Promise<void> {
  const found = await walkFiles(root);
  const want = new Map(files.map((f) => [f.path.slice(strip.length), f]));
  const extra = found.find((f) => !want.has(f.path));
  if (extra || found.length !== want.size) {
    throw new BackupCorruptError(
      `the staged copy of ${strip}${extra?.path ?? ''} differs from the backup's file list; nothing was changed`,
      { plugin: 'backup-rocksdb', phase: 'restore', details: { root } },
    );
  }
  // Hashed as they are on disk now, just before the swap: a file damaged after it was written is refused.
  // (Each was fsynced as it was staged: materialize with `sync`.)
  await mapLimit(found, io.concurrency, async (f) => {
    const file = want.get(f.path) as ManifestFile;
    const got = await hashFile(f.absolute, io);
    if (got.sha256 !== file.sha256 || got.size !== file.size) throw damagedFile(file);
  });
  const dirs = new Set<string>([root]);
  for (const f of found) dirs.add(dirname(f.absolute));
  for (const d of [...dirs].sort().reverse()) await fsyncDir(d);
}
