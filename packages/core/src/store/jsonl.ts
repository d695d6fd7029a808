import { constants, promises as fs } from 'node:fs';
import { ReleaseError, StoreError } from '../errors.js';

// Append-only JSON-lines files: the journal of each run and each environment's history.
//
// - An append writes one whole line and fsyncs it before it is acknowledged. A short write (a full
//   disk) is detected, the bytes written are cut off again (best effort) and the append throws
//   `CG_STORE_FAILED`: nothing is acknowledged.
// - A final line without its newline is what a crash or a full disk leaves mid-write. It was never
//   acknowledged, so readers ignore it and the next append cuts it off before writing: the journal
//   stays readable and the next entries are not glued to the torn one. (Only the append repairs: a
//   reader might otherwise cut a line another writer is still writing.)
// - A fenced line carries its lease token (`fence`). A line whose token is lower than one before it
//   was written by a holder that had lost its lease (paused between its check and its write):
//   readers drop it.

/** One file's lines, parsed. */
export interface ReadLines {
  values: Record<string, unknown>[];
  /** Count of complete lines (the next line's number), dropped ones included. */
  count: number;
}

const plugin = 'file-store';

/** Reads a JSON-lines file. `undefined` when it does not exist; throws `CG_STORE_FAILED` when damaged. */
export async function readLines(file: string): Promise<ReadLines | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StoreError(`cannot read ${file}`, { cause: err, plugin });
  }
  const end = text.lastIndexOf('\n');
  const lines = end < 0 ? [] : text.slice(0, end).split('\n');
  const values: Record<string, unknown>[] = [];
  let maxFence = 0;
  for (let i = 0; i < lines.length; i++) {
    let value: unknown;
    try {
      value = JSON.parse(lines[i]!);
    } catch (err) {
      throw new StoreError(`${file} is damaged at line ${i + 1}: not JSON`, { cause: err, plugin });
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new StoreError(`${file} is damaged at line ${i + 1}: not an object`, { plugin });
    }
    const record = value as Record<string, unknown>;
    const fence = record.fence;
    if (fence !== undefined) {
      if (typeof fence !== 'number' || !Number.isSafeInteger(fence)) {
        throw new StoreError(`${file} is damaged at line ${i + 1}: bad fence`, { plugin });
      }
      if (fence < maxFence) continue;
      maxFence = fence;
      delete record.fence;
    }
    values.push(record);
  }
  return { values, count: lines.length };
}

/** What an appender remembers of a file, so it does not re-read it on every append. */
interface Known {
  size: number;
  count: number;
}

/** Appends lines durably; one per file at a time (the caller serialises appends to one file). */
export class LineAppender {
  readonly #known = new Map<string, Known>();

  /**
   * Appends `make(count)` as one line, where `count` is the number of complete lines before it. Returns
   * what was written. Throws `CG_STORE_FAILED` when the line could not be written whole and synced.
   */
  async append<T>(
    file: string,
    make: (count: number) => T,
    fence?: { token: number; check(): Promise<void> },
  ): Promise<T> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o600);
    } catch (err) {
      throw new StoreError(`cannot open ${file}`, { cause: err, plugin });
    }
    let size = -1;
    try {
      size = (await handle.stat()).size;
      let known = this.#known.get(file);
      if (!known || known.size !== size) {
        known = await scan(handle, size);
        if (known.size !== size) {
          // A torn final line: cut it off so the next line starts clean.
          await handle.truncate(known.size);
          size = known.size;
        }
      }
      const value = make(known.count);
      const line = Buffer.from(
        `${JSON.stringify(fence === undefined ? value : { ...(value as object), fence: fence.token })}\n`,
      );
      // The lease is checked last, right before the write, to keep the window a stale holder could use
      // as small as a file store allows (readers drop what a stale holder writes after a newer one).
      await fence?.check();
      let offset = 0;
      while (offset < line.length) {
        const { bytesWritten } = await handle.write(line, offset, line.length - offset);
        if (bytesWritten <= 0) throw new Error(`short write: ${offset} of ${line.length} bytes`);
        offset += bytesWritten;
      }
      await handle.sync();
      this.#known.set(file, { size: size + line.length, count: known.count + 1 });
      return value;
    } catch (err) {
      this.#known.delete(file);
      // Nothing is acknowledged: cut off what part of the line made it (the next append would anyway).
      if (size >= 0) await handle.truncate(size).catch(() => {});
      if (err instanceof ReleaseError) throw err;
      throw new StoreError(`cannot append to ${file} (${(err as Error).message}); nothing was written`, {
        cause: err,
        plugin,
        retryable: true,
      });
    } finally {
      await handle.close().catch(() => {});
    }
  }

  /** Forgets what is known of a file (another process may have written it). */
  forget(file: string): void {
    this.#known.delete(file);
  }
}

/** Where the last complete line of an open file ends, and how many complete lines there are. */
async function scan(handle: fs.FileHandle, size: number): Promise<Known> {
  const buffer = Buffer.alloc(64 * 1024);
  let count = 0;
  let lastEnd = 0;
  let position = 0;
  while (position < size) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - position), position);
    if (bytesRead <= 0) break;
    for (let i = 0; i < bytesRead; i++) {
      if (buffer[i] === 0x0a) {
        count++;
        lastEnd = position + i + 1;
      }
    }
    position += bytesRead;
  }
  return { size: lastEnd, count };
}
