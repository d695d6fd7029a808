import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Who holds a RocksDB database's LOCK file.
 *
 * @example
 * ```ts
 * const holder: LockHolder | undefined = await lockHolder(db) // { pid: 4242, kind: 'POSIX' }
 * ```
 */
export interface LockHolder {
  /** The holder's process id (-1 for an open-file-description lock, whose owner Linux does not show). */
  pid: number;
  /** `POSIX`, `FLOCK` or `OFDLCK`, as /proc/locks names it. */
  kind: string;
}

/**
 * Finds the process holding the database's `LOCK`. RocksDB takes a POSIX (fcntl) lock, which no file
 * operation reveals, so the lock is looked up in /proc/locks by the LOCK file's device and inode.
 * Answers undefined when the LOCK file is absent or nobody holds it.
 *
 * @example
 * ```ts
 * const holder = await lockHolder('/opt/codegraph/data/rocksdb')
 * if (holder) console.log(`stop process ${holder.pid} first`)
 * ```
 */
export async function lockHolder(dbDir: string): Promise<LockHolder | undefined> {
  const st = await stat(join(dbDir, 'LOCK')).catch(() => undefined);
  if (!st) return undefined;
  const major = (st.dev >> 8) & 0xfff;
  const minor = (st.dev & 0xff) | ((st.dev >> 12) & 0xfff00);
  const table = await readFile('/proc/locks', 'utf8');
  for (const line of table.split('\n')) {
    // "1: POSIX  ADVISORY  WRITE 6532 fe:00:2146540 0 EOF"; waiters have "->" after the number.
    const m = /^\d+:\s+(?:->\s+)?(\S+)\s+\S+\s+\S+\s+(-?\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (!m || line.includes('->')) continue;
    if (
      Number(m[5]) === st.ino &&
      Number.parseInt(m[3]!, 16) === major &&
      Number.parseInt(m[4]!, 16) === minor
    ) {
      return { pid: Number(m[2]), kind: m[1]! };
    }
  }
  return undefined;
}
