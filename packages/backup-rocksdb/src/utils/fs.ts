import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { AbortedError, BackupFailedError } from '@codegraph/release-core';
import { type FileJobResult, runFileJob } from './hash-pool.js';

/** Read size of every streaming pass: large reads keep Node's SHA-256 near 1 GB/s. */
export const DEFAULT_CHUNK_SIZE = 1 << 20;

/** Digest and length of a stream of bytes. */
export interface Digest {
  sha256: string;
  size: number;
}

/** Throws AbortedError when the signal fired. */
export function checkAbort(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortedError(`${what} was cancelled`, { cause: signal.reason });
}

/** A short random suffix for temporary names. */
export function nonce(): string {
  return randomBytes(6).toString('hex');
}

/**
 * Copies `src` to the new file `dst` and hashes it in the same pass, on a worker thread (so several files
 * are hashed on several cores). `dst` is fsynced before this returns unless `fsync` is false.
 */
export async function copyAndHash(
  src: string,
  dst: string,
  options: { signal?: AbortSignal | undefined; chunkSize?: number; mode?: number; fsync?: boolean } = {},
): Promise<Digest> {
  checkAbort(options.signal, `copying ${src}`);
  const { sha256, size } = await fileJob(
    {
      src,
      dst,
      mode: options.mode ?? 0o644,
      fsync: options.fsync ?? true,
      chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE,
    },
    options.signal,
  );
  return { sha256, size };
}

/** Hashes a file in one streaming pass, on a worker thread. */
export async function hashFile(
  path: string,
  options: { signal?: AbortSignal | undefined; chunkSize?: number } = {},
): Promise<Digest> {
  checkAbort(options.signal, `hashing ${path}`);
  const { sha256, size } = await fileJob(
    { src: path, chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE },
    options.signal,
  );
  return { sha256, size };
}

/**
 * Hashes a file and compares it byte for byte with `other` in the same pass (one read of each, one hash):
 * `same` is true only when both hold exactly the same bytes.
 */
export async function hashAndCompare(
  path: string,
  other: string,
  options: { signal?: AbortSignal | undefined; chunkSize?: number } = {},
): Promise<Digest & { same: boolean }> {
  checkAbort(options.signal, `hashing ${path}`);
  return fileJob(
    { src: path, cmp: other, chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE },
    options.signal,
  );
}

async function fileJob(
  job: Parameters<typeof runFileJob>[0],
  signal: AbortSignal | undefined,
): Promise<FileJobResult> {
  try {
    return await runFileJob(job, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ABORT_ERR') checkAbort(signal, `reading ${job.src}`);
    throw err;
  }
}

/** Writes `data` to `dst` through a temporary file, fsync and rename, then fsyncs the directory. */
export async function writeFileAtomic(dst: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  await mkdir(dirname(dst), { recursive: true });
  const tmp = join(dirname(dst), `.${basename(dst)}.tmp-${nonce()}`);
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, dst);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(dst));
}

/** Makes a rename durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** `lstat` that answers undefined for a missing path. */
export async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** A regular file found by {@link walkFiles}. */
export interface FoundFile {
  /** Path relative to the walked root, with `/` separators. */
  path: string;
  absolute: string;
  size: number;
  mode: number;
}

/**
 * Lists the regular files under `root`, sorted. Symbolic links and special files are refused: a backup
 * must not silently miss what a link points to, nor follow it out of the tree.
 */
export async function walkFiles(
  root: string,
  include: (rel: string) => boolean = () => true,
): Promise<FoundFile[]> {
  const out: FoundFile[] = [];
  const visit = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const entry of entries) {
      const absolute = join(dir, entry.name);
      const rel = relative(root, absolute).split(sep).join('/');
      if (!include(rel)) continue;
      if (entry.isDirectory()) {
        await visit(absolute);
      } else if (entry.isFile()) {
        const st = await lstat(absolute);
        out.push({ path: rel, absolute, size: st.size, mode: st.mode & 0o777 });
      } else {
        throw new BackupFailedError(
          `${absolute} is not a regular file or directory (a symbolic link or special file); ` +
            'replace it with a regular file or exclude it from the backup',
          { details: { path: absolute } },
        );
      }
    }
  };
  await visit(root);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Runs `fn` over `items` with at most `limit` at a time; the first failure stops new work and is thrown. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let nextIndex = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && nextIndex < items.length) {
      const i = nextIndex++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker);
  const settled = await Promise.allSettled(workers);
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  return results;
}
