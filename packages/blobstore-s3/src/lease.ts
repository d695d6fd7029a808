import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { BackupFailedError } from '@codegraph/release-core';
import { type Ctx, deleteObject, getSmall, putSmall } from './objects.js';

/** The body of the `LOCK` object. */
export interface LeaseRecord {
  token: string;
  pid: number;
  host: string;
  since: string;
  ttlMs: number;
}

function parseLease(body: Uint8Array): LeaseRecord | undefined {
  try {
    const v = JSON.parse(Buffer.from(body).toString('utf8')) as Partial<LeaseRecord>;
    if (typeof v.token !== 'string' || typeof v.pid !== 'number' || typeof v.host !== 'string')
      return undefined;
    return {
      token: v.token,
      pid: v.pid,
      host: v.host,
      since: String(v.since),
      ttlMs: typeof v.ttlMs === 'number' ? v.ttlMs : 0,
    };
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A lease held by this process. */
export interface HeldLease {
  /**
   * Throws when the lease is no longer ours (taken over after an expiry): nothing may be committed or
   * deleted then. A check younger than `maxAgeMs` is not repeated.
   */
  check(maxAgeMs?: number): Promise<void>;
  release(): Promise<void>;
}

/**
 * The repository's writer lock on a bucket. S3 has no exclusive create that every S3-compatible server
 * honours, so the lock is a lease: read `LOCK`; when it is absent, expired (by the server's clock: its
 * `Last-Modified` against the `Date` of the same response) or left by a dead process on this host, write a
 * record with a random token, wait `settleMs`, and read it back: the token decides. The holder rewrites it
 * every `ttl / 3` and checks the token before every document it commits. See the README for what holds.
 */
export async function acquireLease(c: Ctx, key: string): Promise<HeldLease> {
  const { leaseTtlMs: ttlMs, leaseSettleMs: settleMs, logger } = c.o;
  const where = c.url + key;
  const locked = (holder: LeaseRecord | undefined, why: string) =>
    new BackupFailedError(
      `the backup repository ${c.url} is in use by another backup, import or prune (${holder ? `pid ${holder.pid} on ${holder.host} since ${holder.since}` : 'unknown holder'}; ${why}); ` +
        `wait for it to finish; a lease not refreshed for ${Math.round(ttlMs / 1000)} s is taken over`,
      { plugin: 'blobstore-s3', retryable: true, details: { repository: c.url, lock: where } },
    );

  const read = async () => {
    const got = await getSmall(c, key);
    if (!got) return undefined;
    const now = c.conn.serverNow() ?? Date.now();
    const age = got.lastModified ? now - got.lastModified.getTime() : Number.POSITIVE_INFINITY;
    return { record: parseLease(got.body), age };
  };

  const mine: LeaseRecord = {
    token: randomBytes(16).toString('hex'),
    pid: process.pid,
    host: hostname(),
    since: new Date().toISOString(),
    ttlMs,
  };
  const body = Buffer.from(JSON.stringify(mine));
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    const current = await read();
    if (current) {
      const r = current.record;
      const expired = current.age > (r?.ttlMs || ttlMs);
      const dead = r !== undefined && r.host === hostname() && !isAlive(r.pid);
      if (r && r.token !== mine.token && !expired && !dead) throw locked(r, 'lease held');
      if (r?.token !== mine.token) {
        logger.warn('blobstore-s3: taking over a lease', {
          lock: where,
          holder: r ? `${r.pid}@${r.host}` : 'unreadable',
          reason: dead ? 'holder process is gone' : 'expired',
        });
      }
    }
    await putSmall(c, key, body);
    // Whoever read the lease free and then wrote did so within `gap`; a contender that reads back after
    // `settleMs > gap` sees the last of those writes, so exactly one token is read back by its writer.
    // A write slower than that could overwrite a lease already claimed: it gives way and tries again.
    const gap = performance.now() - started;
    await sleep(settleMs);
    const back = await read();
    if (back?.record?.token !== mine.token) throw locked(back?.record, 'another contender won the lease');
    if (gap < settleMs * 0.8) break;
    await deleteObject(c, key);
    if (attempt >= 3) {
      throw locked(
        undefined,
        `the lease write took ${Math.round(gap)} ms, too close to the settle time of ${settleMs} ms`,
      );
    }
    logger.warn('blobstore-s3: lease write was slow; trying again', { lock: where, gapMs: Math.round(gap) });
    await sleep(Math.random() * settleMs);
  }

  let lost: string | undefined;
  let refreshing: Promise<void> = Promise.resolve();
  let verifiedAt = performance.now();
  const verify = async () => {
    const started = performance.now();
    const now = await read();
    if (now?.record?.token === mine.token) verifiedAt = started;
    if (now?.record?.token !== mine.token) {
      lost = now?.record
        ? `taken by pid ${now.record.pid} on ${now.record.host}`
        : 'the lease object is gone';
    }
  };
  const timer = setInterval(
    () => {
      refreshing = (async () => {
        try {
          await verify();
          if (lost) {
            logger.error('blobstore-s3: lease lost', { lock: where, why: lost });
            clearInterval(timer);
            return;
          }
          await putSmall(c, key, body);
        } catch (err) {
          logger.warn('blobstore-s3: lease refresh failed', { lock: where, error: String(err) });
        }
      })();
    },
    Math.max(100, Math.floor(ttlMs / 3)),
  );
  timer.unref();

  return {
    async check(maxAgeMs = 0) {
      await refreshing;
      if (!lost && performance.now() - verifiedAt >= maxAgeMs) await verify();
      if (lost) {
        throw new BackupFailedError(
          `the lease on ${c.url} was lost (${lost}); nothing more is committed; run the backup again`,
          { plugin: 'blobstore-s3', details: { lock: where } },
        );
      }
    },
    async release() {
      clearInterval(timer);
      await refreshing;
      const now = await read();
      if (now?.record?.token === mine.token) await deleteObject(c, key);
    },
  };
}
