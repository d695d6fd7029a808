import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { EnvironmentLockedError, LockLostError, StoreError } from '../errors.js';
import { fsyncDir } from '../kit/fs.js';
import { isProcessAlive, processStartTime } from '../kit/process.js';
import type { Fence, Lock, LockOwner } from './types.js';

// The file store's lease on an environment: one file per token in `envs/<env>/lease/`.
//
//   000000000007.json       the lease of token 7: { environment, token, owner }, written once, never changed
//   000000000007.released   its holder released it
//
// The current lease is the highest token. Taking a lease is a compare-and-swap on "nobody took token
// N+1 yet": the taker writes its record to a temp file, fsyncs it and hard-links it to `N+1.json`. A
// link fails when the name exists, so exactly one racer creates each token, and a reader never sees
// a half-written lease (the file has its whole content before it has its name). A taker that read an
// old N (slow, and N+1 has been pruned since) checks after the link that its token is the highest,
// and steps back otherwise.
//
// A refresh only touches the file's mtime: nothing is emptied or rewritten, so no reader can catch a
// lease half-written. A lease is dead when its owner process on this host is gone (PID plus process
// start time, so a recycled PID is not the owner), or when it has not been refreshed for
// `staleAfterMs` (owners on other hosts, paused processes). A lease file that cannot be read (a damaged
// disk, a hand edit) is held until it is that stale: it is never taken over silently while it may
// belong to a live owner.

const plugin = 'file-store';
const tokenFile = /^(\d{12})\.json$/;
const name = (token: number) => String(token).padStart(12, '0');

/** The current lease of an environment as read from its directory. */
export interface LeaseState {
  token: number;
  owner?: LockOwner | undefined;
  released: boolean;
  /** When it was last refreshed (the file's mtime). */
  refreshedAt: number;
}

/** Options of the lease functions. */
export interface LeaseOptions {
  staleAfterMs: number;
  refreshEveryMs: number;
}

/** Reads the highest lease of a directory; `undefined` when the environment was never locked. */
export async function currentLease(dir: string): Promise<LeaseState | undefined> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StoreError(`cannot list ${dir}`, { cause: err, plugin });
  }
  let token = 0;
  for (const n of names) {
    const m = tokenFile.exec(n);
    if (m) token = Math.max(token, Number(m[1]));
  }
  if (token === 0) return undefined;
  const released = names.includes(`${name(token)}.released`);
  const file = join(dir, `${name(token)}.json`);
  try {
    const [stat, text] = await Promise.all([fs.stat(file), fs.readFile(file, 'utf8')]);
    return { token, owner: parseOwner(text, token), released, refreshedAt: stat.mtimeMs };
  } catch (err) {
    // Pruned between the listing and the read: a newer lease exists, look again.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return currentLease(dir);
    throw new StoreError(`cannot read lease ${file}`, { cause: err, plugin });
  }
}

function parseOwner(text: string, token: number): LockOwner | undefined {
  try {
    const v = JSON.parse(text) as { token?: unknown; owner?: Record<string, unknown> };
    const o = v.owner;
    if (v.token !== token || !o) return undefined;
    if (typeof o.runId !== 'string' || typeof o.host !== 'string' || typeof o.since !== 'string')
      return undefined;
    if (typeof o.pid !== 'number' || !Number.isInteger(o.pid)) return undefined;
    if (o.processStart !== undefined && typeof o.processStart !== 'string') return undefined;
    return {
      runId: o.runId,
      pid: o.pid,
      host: o.host,
      since: o.since,
      ...(o.processStart !== undefined ? { processStart: o.processStart } : {}),
    };
  } catch {
    return undefined;
  }
}

/** Whether a lease still binds: not released, refreshed recently, and its owner on this host alive. */
export function leaseHeld(lease: LeaseState | undefined, staleAfterMs: number): boolean {
  if (!lease || lease.released) return false;
  if (Date.now() - lease.refreshedAt > staleAfterMs) return false;
  const o = lease.owner;
  if (!o) return true; // unreadable: held until stale
  if (o.host !== hostname()) return true;
  return isProcessAlive({ pid: o.pid, startTime: o.processStart });
}

/** Throws `CG_LOCK_LOST` unless `fence` is the current, unreleased lease of the directory. */
export async function checkFence(dir: string, fence: Fence): Promise<void> {
  const lease = await currentLease(dir);
  if (!lease || lease.token !== fence.token || lease.released) {
    throw new LockLostError(
      `the lease of ${fence.environment} with token ${fence.token} is no longer held${
        lease && lease.token !== fence.token ? ` (token ${lease.token} holds it now)` : ''
      }; nothing was written`,
      { plugin, details: { environment: fence.environment, token: fence.token, current: lease?.token } },
    );
  }
}

/** Takes the lease of `environment` in `dir` for `owner`; see the comment at the top. */
export async function takeLease(
  dir: string,
  environment: string,
  asked: LockOwner,
  options: LeaseOptions,
): Promise<Lock> {
  const owner: LockOwner = {
    ...asked,
    processStart: asked.processStart ?? (asked.host === hostname() ? processStartTime(asked.pid) : undefined),
  };
  await fs.mkdir(dir, { recursive: true });
  const legacy = await legacyHolder(join(dir, '..', 'lock.json'), options.staleAfterMs);
  if (legacy) {
    throw new EnvironmentLockedError(
      `environment "${environment}" is locked by run ${legacy.runId} (pid ${legacy.pid} on ${legacy.host}) of an older release of this SDK (lock.json); let it finish first`,
      { plugin, details: { owner: legacy } },
    );
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const lease = await currentLease(dir);
    if (leaseHeld(lease, options.staleAfterMs)) throw lockedError(environment, lease!);
    const token = (lease?.token ?? 0) + 1;
    const file = join(dir, `${name(token)}.json`);
    const tmp = join(dir, `.${name(token)}.${randomBytes(6).toString('hex')}.tmp`);
    await fs.writeFile(tmp, JSON.stringify({ environment, token, owner }), { mode: 0o600, flush: true });
    try {
      await fs.link(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue; // another racer took this token
      throw new StoreError(`cannot create lease ${file}`, { cause: err, plugin });
    } finally {
      await fs.rm(tmp, { force: true });
    }
    const now = await currentLease(dir);
    if (now?.token !== token) {
      // A slow racer re-created a pruned token below the current one: not a lease, step back.
      await fs.writeFile(join(dir, `${name(token)}.released`), '', { flag: 'a' });
      continue;
    }
    await fsyncDir(dir);
    void prune(dir, token);
    return holdLease(dir, environment, owner, token, options);
  }
  const lease = await currentLease(dir);
  if (lease && leaseHeld(lease, options.staleAfterMs)) throw lockedError(environment, lease);
  throw new EnvironmentLockedError(`environment "${environment}" is contended by several takers; try again`, {
    plugin,
  });
}

function lockedError(environment: string, lease: LeaseState): EnvironmentLockedError {
  const o = lease.owner;
  return new EnvironmentLockedError(
    o
      ? `environment "${environment}" is locked by run ${o.runId} (pid ${o.pid} on ${o.host} since ${o.since}); wait for it to finish, or resume or roll back that run`
      : `environment "${environment}" is locked (lease ${lease.token} is unreadable; it is taken over once it has not been refreshed for the stale limit)`,
    {
      plugin,
      details: {
        token: lease.token,
        ...(o ? { owner: { runId: o.runId, pid: o.pid, host: o.host, since: o.since } } : {}),
      },
    },
  );
}

function holdLease(
  dir: string,
  environment: string,
  owner: LockOwner,
  token: number,
  options: LeaseOptions,
): Lock {
  const file = join(dir, `${name(token)}.json`);
  const lost = new AbortController();
  let lastRefresh = Date.now();
  let done = false;
  let refreshing: Promise<void> | undefined;
  const lose = (why: string) => {
    if (done) return;
    done = true;
    clearInterval(timer);
    lost.abort(
      new LockLostError(`the lease of ${environment} (token ${token}) was lost: ${why}`, {
        plugin,
        details: { environment, token },
      }),
    );
  };
  const refresh = async () => {
    if (done) return;
    if (Date.now() - lastRefresh > options.staleAfterMs)
      return lose('it was not refreshed before it expired');
    try {
      const lease = await currentLease(dir);
      if (done) return;
      if (lease?.token !== token) return lose(`token ${lease?.token ?? '?'} took it over`);
      if (lease.released) return lose('it was released');
      const now = new Date();
      await fs.utimes(file, now, now);
      lastRefresh = now.getTime();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') lose('its file is gone');
      // Anything else (a full disk, a busy filesystem) is tried again until the lease expires.
    }
  };
  const timer = setInterval(() => {
    refreshing ??= refresh().finally(() => {
      refreshing = undefined;
    });
  }, options.refreshEveryMs);
  timer.unref();
  return {
    environment,
    owner,
    token,
    lost: lost.signal,
    async release() {
      if (done) return;
      done = true;
      clearInterval(timer);
      await refreshing;
      try {
        await fs.writeFile(join(dir, `${name(token)}.released`), '', { mode: 0o600, flag: 'a', flush: true });
        await fsyncDir(dir);
      } catch (err) {
        // No room for the marker (a full disk): age the lease instead, which needs none. Expired, it
        // is free for the next taker at once (the file itself must stay: it holds the token).
        const epoch = new Date(0);
        await fs.utimes(file, epoch, epoch).catch(() => {
          throw new StoreError(`cannot release the lease ${file}`, { cause: err, plugin });
        });
      }
    },
  };
}

/**
 * The owner of a `lock.json` written by a release of the SDK before leases, while it is alive: an
 * upgrade in the middle of a run must not give the environment a second holder. A dead one is ignored.
 */
async function legacyHolder(file: string, staleAfterMs: number): Promise<LockOwner | undefined> {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined; // none, or unreadable: that release treated an unreadable lock as free too
  }
  if (typeof v?.runId !== 'string' || typeof v.host !== 'string' || typeof v.pid !== 'number')
    return undefined;
  const fresh = Date.now() - Date.parse(String(v.refreshedAt)) <= staleAfterMs;
  const alive = v.host === hostname() ? isProcessAlive({ pid: v.pid }) : fresh;
  return alive ? { runId: v.runId, pid: v.pid, host: v.host, since: String(v.since) } : undefined;
}

/** Removes leases older than the previous one (never the two newest: see the comment at the top). */
async function prune(dir: string, token: number): Promise<void> {
  try {
    for (const n of await fs.readdir(dir)) {
      const m = /^(\d{12})\.(json|released)$/.exec(n);
      if (m && Number(m[1]) < token - 1) await fs.rm(join(dir, n), { force: true });
      else if (n.endsWith('.tmp') && n.startsWith('.')) {
        const stat = await fs.stat(join(dir, n)).catch(() => undefined);
        if (stat && Date.now() - stat.mtimeMs > 3_600_000) await fs.rm(join(dir, n), { force: true });
      }
    }
  } catch {
    // pruning is housekeeping: the next takeover tries again
  }
}
