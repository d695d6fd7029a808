import type { Fence } from '@codegraph/release-core';
import type { Db } from './db.js';

/** One journal append waiting for its batch. */
interface Pending {
  runId: string;
  type: string;
  text: string;
  head: { environment: string; kind: string; version: string; startedAt: string } | undefined;
  status: string | null;
  fence: Fence | undefined;
  resolve(row: { seq: number; at: Date } | undefined): void;
  reject(err: unknown): void;
}

/** Batches in flight at once: enough to keep the server busy, few enough to leave the pool to others. */
const maxInFlight = 4;
/** Appends per statement. */
const maxBatch = 128;
/** Callers resumed per turn of the event loop once their batch committed. */
const wakeAtOnce = 4;

/**
 * Journal appends, grouped: appends that arrive while others are being written go out together in one
 * statement (so one commit, one WAL flush, covers many runs), and an append that arrives on an idle store
 * goes out at once. Each entry still gets its own fence check and its own sequence number, in the same
 * statement; a batch holds at most one entry per run, and a run's next entry waits for the one before it,
 * so every run's entries are numbered in the order they were appended.
 */
export function createAppender(db: Db) {
  const { s } = db;
  // Only entries whose fence is absent or names the current, unexpired lease are written. FOR SHARE keeps a
  // takeover from slipping in between the check and the commit: the takeover's UPDATE waits for this
  // statement; a batch that waited for a takeover re-reads the lease row and finds its token gone.
  // The run's counter row numbers its entries (ON CONFLICT: the counter moves with the insert).
  const statement = db.statement(
    'append_batch',
    `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                            $7::timestamptz[], $8::text[], $9::text[], $10::bigint[])
         AS i(run_id, type, entry, environment, kind, version, started_at, status, fence_env, fence_token)
     ),
     held AS (
       SELECT l.environment, l.token FROM ${s}.leases l
       WHERE (l.environment, l.token) IN (SELECT fence_env, fence_token FROM input WHERE fence_env IS NOT NULL)
         AND l.expires_at > clock_timestamp()
       FOR SHARE OF l
     ),
     allowed AS (
       SELECT i.* FROM input i
       WHERE i.fence_env IS NULL OR EXISTS (SELECT 1 FROM held h WHERE h.environment = i.fence_env AND h.token = i.fence_token)
     ),
     run AS (
       INSERT INTO ${s}.runs AS r (run_id, environment, kind, version, started_at, status, next_seq, updated_at)
       SELECT run_id, environment, kind, version, started_at, status, 1, clock_timestamp() FROM allowed
       ON CONFLICT (run_id) DO UPDATE SET
         next_seq = r.next_seq + 1,
         environment = COALESCE(r.environment, EXCLUDED.environment),
         kind = COALESCE(r.kind, EXCLUDED.kind),
         version = COALESCE(r.version, EXCLUDED.version),
         started_at = COALESCE(r.started_at, EXCLUDED.started_at),
         status = COALESCE(EXCLUDED.status, r.status),
         updated_at = EXCLUDED.updated_at
       RETURNING r.run_id, r.next_seq - 1 AS seq
     )
     INSERT INTO ${s}.journal (run_id, seq, type, at, entry)
     SELECT a.run_id, run.seq, a.type, clock_timestamp(), a.entry::json FROM allowed a JOIN run USING (run_id)
     RETURNING run_id, seq, at`,
  );

  const queue: Pending[] = [];
  const busyRuns = new Set<string>();
  let inFlight = 0;

  function take(): Pending[] {
    const batch: Pending[] = [];
    const inBatch = new Set<string>();
    const blocked = new Set<string>();
    for (let i = 0; i < queue.length && batch.length < maxBatch; ) {
      const p = queue[i]!;
      // A run's later entry never overtakes an earlier one still queued or being written.
      if (busyRuns.has(p.runId) || inBatch.has(p.runId) || blocked.has(p.runId)) {
        blocked.add(p.runId);
        i++;
        continue;
      }
      queue.splice(i, 1);
      inBatch.add(p.runId);
      batch.push(p);
    }
    return batch;
  }

  function pump(): void {
    while (inFlight < maxInFlight && queue.length > 0) {
      const batch = take();
      if (batch.length === 0) return;
      inFlight++;
      for (const p of batch) busyRuns.add(p.runId);
      void write(batch, () => {
        inFlight--;
        for (const p of batch) busyRuns.delete(p.runId);
        pump();
      });
    }
  }

  async function write(batch: Pending[], done: () => void): Promise<void> {
    const col = <T>(f: (p: Pending) => T) => batch.map(f);
    let rows: Array<{ run_id: string; seq: number; at: Date }>;
    try {
      rows = await db.query<{ run_id: string; seq: number; at: Date }>(
        batch.length === 1
          ? `append to the journal of run ${batch[0]!.runId}`
          : `append to ${batch.length} journals`,
        statement,
        [
          col((p) => p.runId),
          col((p) => p.type),
          col((p) => p.text),
          col((p) => p.head?.environment ?? null),
          col((p) => p.head?.kind ?? null),
          col((p) => p.head?.version ?? null),
          col((p) => p.head?.startedAt ?? null),
          col((p) => p.status),
          col((p) => p.fence?.environment ?? null),
          col((p) => (p.fence ? String(p.fence.token) : null)),
        ],
      );
    } catch (err) {
      done();
      for (const p of batch) p.reject(err);
      return;
    }
    // Committed: the next batch may go. Callers are woken a few at a time, each group in its own turn of
    // the event loop, so a big batch does not stall timers (lease refreshes) behind its callers' work.
    done();
    const byRun = new Map(rows.map((r) => [r.run_id, r]));
    for (let i = 0; i < batch.length; i += wakeAtOnce) {
      if (i > 0) await new Promise((r) => setImmediate(r));
      for (const p of batch.slice(i, i + wakeAtOnce)) p.resolve(byRun.get(p.runId));
    }
  }

  return {
    /** Resolves with the entry's number and time, or `undefined` when its fence was refused. */
    append(p: Omit<Pending, 'resolve' | 'reject'>): Promise<{ seq: number; at: Date } | undefined> {
      return new Promise((resolve, reject) => {
        queue.push({ ...p, resolve, reject });
        pump();
      });
    },
  };
}
