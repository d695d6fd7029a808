import { hostname } from 'node:os';
import {
  EnvironmentLockedError,
  type Lock,
  LockLostError,
  type LockOwner,
  type OperationContext,
  StoreError,
  throwIfAborted,
} from '@codegraph/release-core';
import { checkIdentifier, processStartTime } from '@codegraph/release-core/kit';
import type { Db } from './db.js';
import { plugin } from './errors.js';
import { checkOwner, environmentOf } from './validate.js';

interface LeaseRow {
  run_id: string | null;
  pid: number | null;
  host: string | null;
  since: string | null;
  process_start: string | null;
  ms_left: number;
}

/** A lease this process holds, so a refused fenced write can fire its `lost` signal at once. */
interface Held {
  environment: string;
  token: number;
  lose(reason: string): void;
}

/**
 * Leases on environments: one row per environment with its owner, its expiry (on the database's clock)
 * and a fencing token that grows on every take. Take, refresh and release are one statement each.
 */
export function createLeases(db: Db) {
  const { s } = db;
  const { leaseMs, refreshEveryMs, logger } = db.options;
  const held = new Set<Held>();

  // Takes the lease when nobody holds it or its holder let it expire; the token grows either way.
  const take = db.statement(
    'lease_take',
    `INSERT INTO ${s}.leases AS l
       (environment, token, run_id, pid, host, since, process_start, expires_at, refreshed_at)
     VALUES ($1, 1, $2, $3, $4, $5, $6, clock_timestamp() + $7 * interval '1 millisecond', clock_timestamp())
     ON CONFLICT (environment) DO UPDATE SET
       token = l.token + 1, run_id = EXCLUDED.run_id, pid = EXCLUDED.pid, host = EXCLUDED.host,
       since = EXCLUDED.since, process_start = EXCLUDED.process_start,
       expires_at = EXCLUDED.expires_at, refreshed_at = EXCLUDED.refreshed_at
     WHERE l.expires_at <= clock_timestamp()
     RETURNING token`,
  );
  const refresh = db.statement(
    'lease_refresh',
    `UPDATE ${s}.leases SET expires_at = clock_timestamp() + $3 * interval '1 millisecond', refreshed_at = clock_timestamp()
     WHERE environment = $1 AND token = $2 AND expires_at > clock_timestamp()
     RETURNING token`,
  );
  const release = db.statement(
    'lease_release',
    `UPDATE ${s}.leases SET expires_at = clock_timestamp()
     WHERE environment = $1 AND token = $2 AND expires_at > clock_timestamp()`,
  );
  const owner = db.statement(
    'lease_owner',
    `SELECT run_id, pid, host, since, process_start,
            (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::float8 AS ms_left
     FROM ${s}.leases WHERE environment = $1 AND expires_at > clock_timestamp()`,
  );

  function ownerOf(environment: string, row: LeaseRow): LockOwner {
    try {
      return checkOwner({
        runId: checkIdentifier(row.run_id, 'run id'),
        pid: Number(row.pid),
        host: String(row.host),
        since: String(row.since),
        ...(row.process_start ? { processStart: row.process_start } : {}),
      });
    } catch {
      throw new StoreError(
        `the lease row of ${environment} is corrupt; delete it once no run is in progress`,
        {
          plugin,
        },
      );
    }
  }

  async function currentOwner(
    environment: string,
  ): Promise<{ owner: LockOwner; msLeft: number } | undefined> {
    const rows = await db.query<LeaseRow>('read the lease', owner, [environment]);
    const row = rows[0];
    return row
      ? { owner: ownerOf(environment, row), msLeft: Math.max(0, Math.round(row.ms_left)) }
      : undefined;
  }

  function hold(environment: string, who: LockOwner, token: number, since: number): Lock {
    const controller = new AbortController();
    let released = false;
    let refreshTimer: NodeJS.Timeout | undefined;
    let expiryTimer: NodeJS.Timeout | undefined;
    const entry: Held = { environment, token, lose };
    held.add(entry);

    function stop(): void {
      released = true;
      held.delete(entry);
      clearTimeout(refreshTimer);
      clearTimeout(expiryTimer);
    }
    function lose(reason: string): void {
      if (controller.signal.aborted) return;
      stop();
      logger.warn(`postgres-store: lost the lease on ${environment} (token ${token}): ${reason}`);
      controller.abort(
        new LockLostError(
          `the lease on ${environment} was lost: ${reason}; this run stops acting on the target`,
          {
            plugin,
            details: { environment, token },
          },
        ),
      );
    }
    // Measured from before the statement was sent: the lease cannot end on the server before it ends here.
    function expireAt(confirmedAt: number): void {
      clearTimeout(expiryTimer);
      const left = Math.max(0, confirmedAt + leaseMs - performance.now());
      expiryTimer = setTimeout(() => lose(`it could not be refreshed within ${leaseMs} ms`), left);
      expiryTimer.unref();
    }
    function schedule(ms: number): void {
      refreshTimer = setTimeout(() => void tick(), ms);
      refreshTimer.unref();
    }
    async function tick(): Promise<void> {
      if (released) return;
      const sentAt = performance.now();
      try {
        const rows = await db.query<{ token: string }>('refresh the lease', refresh, [
          environment,
          token,
          leaseMs,
        ]);
        if (released) return;
        if (rows.length === 0) return lose('another holder took it over, or it expired');
        expireAt(sentAt);
        // Up to 10 % early: leases taken together (a platform releasing many environments) spread out.
        schedule(Math.round(refreshEveryMs * (0.9 + Math.random() * 0.1)));
      } catch (err) {
        if (released) return;
        logger.warn(
          `postgres-store: could not refresh the lease on ${environment}: ${(err as Error).message}`,
        );
        schedule(Math.max(50, Math.floor(refreshEveryMs / 3)));
      }
    }
    expireAt(since);
    schedule(refreshEveryMs);

    return {
      environment,
      owner: who,
      token,
      lost: controller.signal,
      async release() {
        if (released) return;
        stop();
        try {
          await db.query('release the lease', release, [environment, token]);
        } catch (err) {
          // The lease ends on its own at its expiry; a release must not hide the run's own outcome.
          logger.warn(
            `postgres-store: could not release the lease on ${environment}; it expires within ${leaseMs} ms: ${(err as Error).message}`,
          );
        }
      },
    };
  }

  return {
    async lock(environment: string, owner: LockOwner, ctx?: OperationContext): Promise<Lock> {
      environmentOf(environment);
      checkOwner(owner);
      // An owner on this host is told apart from a later process with its PID by the start time.
      const who =
        owner.processStart === undefined && owner.host === hostname()
          ? { ...owner, processStart: processStartTime(owner.pid) }
          : owner;
      throwIfAborted(ctx?.signal, `lock ${environment}`);
      for (let attempt = 0; ; attempt++) {
        const since = performance.now();
        const rows = await db.query<{ token: string }>('take the lease', take, [
          environment,
          who.runId,
          who.pid,
          who.host,
          who.since,
          who.processStart ?? null,
          leaseMs,
        ]);
        if (rows[0]) return hold(environment, who, Number(rows[0].token), since);
        const current = await currentOwner(environment);
        // Expired between the two statements: try again, the next take wins or meets a new holder.
        if (!current && attempt < 3) continue;
        const o = current?.owner;
        throw new EnvironmentLockedError(
          o
            ? `environment "${environment}" is locked by run ${o.runId} (pid ${o.pid} on ${o.host} since ${o.since}); its lease ends within ${Math.ceil(current.msLeft / 1000)} s unless refreshed; wait for it to finish, or resume or roll back that run`
            : `environment "${environment}" lock is contended; try again`,
          {
            plugin,
            ...(o
              ? {
                  details: {
                    owner: { runId: o.runId, pid: o.pid, host: o.host, since: o.since },
                    leaseMsLeft: current.msLeft,
                  },
                }
              : {}),
          },
        );
      }
    },

    async lockOwner(environment: string): Promise<LockOwner | undefined> {
      environmentOf(environment);
      return (await currentOwner(environment))?.owner;
    },

    /** A fenced write was refused: the lease behind this token is gone, so say so now, not at the next refresh. */
    refused(environment: string, token: number): void {
      for (const h of held)
        if (h.environment === environment && h.token === token) h.lose('a fenced write was refused');
    },

    /** Stops refreshing every lease this store holds (they expire); their runs are told they lost them. */
    closeAll(): void {
      for (const h of [...held]) h.lose('the store was closed');
    },
  };
}
