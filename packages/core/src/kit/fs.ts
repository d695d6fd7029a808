import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** File mode of the new file. @default 0o600 */
  mode?: number;
}

/**
 * Writes a file so that a reader sees the old content or the whole new one, never a torn mix, even
 * across a crash: write a temp file beside it, fsync it, rename it over, fsync the directory. A short
 * write (a full disk) throws and leaves the old file in place.
 *
 * @example
 * ```ts
 * await writeFileAtomic('/var/lib/release/state.json', JSON.stringify(state))
 * ```
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const handle = await open(tmp, 'wx', options.mode ?? 0o600);
  try {
    let offset = 0;
    while (offset < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
      if (bytesWritten <= 0) throw new Error(`short write to ${tmp}`);
      offset += bytesWritten;
    }
    await handle.sync();
    await handle.close();
    await rename(tmp, file);
  } catch (err) {
    await handle.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
  await fsyncDir(dirname(file));
}

/** Makes a rename or create in `dir` durable. Best effort on filesystems that refuse to open a directory. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // some filesystems (and Windows) cannot fsync a directory: the rename is still atomic
  } finally {
    await handle?.close().catch(() => {});
  }
}
