import { createHash } from 'node:crypto';
import { link, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BackupFailedError } from '@codegraph/release-core';
import { nonce, writeFileAtomic } from './fs.js';

// The repository's LOCK file names its holder by host, PID and the process's start time (so a recycled PID
// is not mistaken for a live holder). It is created with link(), which is atomic and exclusive; a dead
// holder's lock is taken over by one racer only: the racer that creates the takeover marker for that exact
// lock content (link(), exclusive) is the only one that may remove it, so a live lock is never moved aside
// (moving it aside and back would open a window in which a third racer takes the slot).

interface Holder {
  pid?: number;
  host?: string;
  start?: string;
}

function parse(text: string): Holder {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    return {
      ...(typeof v['pid'] === 'number' ? { pid: v['pid'] } : {}),
      ...(typeof v['host'] === 'string' ? { host: v['host'] } : {}),
      ...(typeof v['start'] === 'string' ? { start: v['start'] } : {}),
    };
  } catch {
    return {};
  }
}

/** A process's start time in clock ticks since boot (Linux), or undefined when it is not running. */
async function startOf(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

async function isDead(holder: Holder): Promise<boolean> {
  if (holder.pid === undefined || holder.host !== hostname()) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return true;
  }
  // Alive: the same process only when it started when the lock says (a PID is recycled).
  return holder.start !== undefined && (await startOf(holder.pid)) !== holder.start;
}

function lockedError(root: string, holder: string): BackupFailedError {
  return new BackupFailedError(
    `the backup repository ${root} is in use by another backup, import, restore or prune (${holder.trim()}); ` +
      'wait for it to finish, or delete LOCK if that process is gone',
    { plugin: 'backup-rocksdb', retryable: true, details: { repository: root } },
  );
}

/** Removes `file` only if it still holds `expected`; answers whether it did. */
async function removeIf(root: string, file: string, expected: string): Promise<boolean> {
  const grave = join(root, `.LOCK.released-${nonce()}`);
  try {
    await rename(file, grave);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  const text = await readFile(grave, 'utf8').catch(() => '');
  if (text !== expected) {
    // Someone else's lock: put it back (link fails only if yet another process took the slot meanwhile).
    await link(grave, file).catch(() => undefined);
    await rm(grave, { force: true });
    return false;
  }
  await rm(grave, { force: true });
  return true;
}

/** How old a takeover marker must be before it counts as left by a racer that died mid-takeover. */
const staleMarkerMs = 30_000;

/**
 * Removes a dead holder's LOCK if this caller wins the takeover marker for exactly that content.
 * Returns whether it removed it (the caller then links its own lock, competing with newcomers fairly).
 */
async function takeOver(root: string, file: string, holder: string, me: string): Promise<boolean> {
  const marker = join(
    root,
    `.LOCK.takeover-${createHash('sha256').update(holder).digest('hex').slice(0, 24)}`,
  );
  const draft = join(root, `.LOCK.t.${nonce()}`);
  await writeFileAtomic(draft, me);
  try {
    await link(draft, marker);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another racer is taking it over; a marker left by one that died mid-way is cleared once stale.
    const st = await stat(marker).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > staleMarkerMs) await rm(marker, { force: true });
    await new Promise((r) => setTimeout(r, 25));
    return false;
  } finally {
    await rm(draft, { force: true });
  }
  try {
    // LOCK is never rewritten in place and only the marker's holder removes a dead one, so if it still
    // holds the dead content now, it holds it when renamed.
    if ((await readFile(file, 'utf8').catch(() => '')) !== holder) return false;
    const grave = join(root, `.LOCK.released-${nonce()}`);
    try {
      await rename(file, grave);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    await rm(grave, { force: true });
    return true;
  } finally {
    await rm(marker, { force: true });
  }
}

/**
 * Takes the repository lock in `root`; the returned function releases it (only if it is still ours).
 *
 * @example
 * ```ts
 * const release = await repositoryLock('/opt/codegraph/backups')
 * try { … } finally { await release() }
 * ```
 */
export async function repositoryLock(root: string): Promise<() => Promise<void>> {
  const file = join(root, 'LOCK');
  const me = JSON.stringify({
    pid: process.pid,
    host: hostname(),
    start: await startOf(process.pid),
    since: new Date().toISOString(),
  });
  for (let attempt = 0; attempt < 3; ) {
    // Written aside then linked: LOCK never exists half-written.
    const draft = join(root, `.LOCK.${nonce()}`);
    await writeFileAtomic(draft, me);
    try {
      await link(draft, file);
      return async () => {
        await removeIf(root, file, me);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await rm(draft, { force: true });
    }
    const holder = await readFile(file, 'utf8').catch(() => '');
    if (holder === '') {
      attempt++; // released meanwhile
      continue;
    }
    if (!(await isDead(parse(holder)))) throw lockedError(root, holder);
    // Left by a process that died (a killed backup): a won takeover does not use up an attempt.
    if (!(await takeOver(root, file, holder, me))) attempt++;
  }
  throw lockedError(root, await readFile(file, 'utf8').catch(() => 'unknown'));
}
