import { randomBytes } from 'node:crypto';
import type {
  ControlAction,
  ControlOutcome,
  ControlReply,
  ControlRequest,
  ControlRequestInput,
  ControlSubscription,
  OperationContext,
} from '@codegraph/release-core';
import { coalescedRead } from './coalesce.js';
import type { Db } from './db.js';
import type { Listener } from './listener.js';
import { checkControl, checkControlId, environmentOf, reasonMaxLength, runIdOf } from './validate.js';

interface ControlRow {
  seq: string;
  id: string;
  environment: string;
  run_id: string | null;
  action: string;
  full_promote: boolean | null;
  reason: string | null;
  requested_by: string | null;
  subject: string | null;
  created_at: Date;
}

interface ReplyRow {
  action: string;
  withdrawn_at: Date | null;
  reply_run_id: string | null;
  reply_applied: boolean | null;
  reply_message: string | null;
  replied_at: Date | null;
}

const columns =
  'seq, id, environment, run_id, action, full_promote, reason, requested_by, subject, created_at';

/**
 * Control requests as rows: sent from anywhere, consumed exactly once (a conditional UPDATE that only one
 * consumer or one withdraw can win), answered in the same row. Watchers and waiters hear of new rows
 * through LISTEN/NOTIFY and poll while the notifications cannot be trusted to arrive.
 */
export function createControl(db: Db, listener: Listener, channels: { control: string; reply: string }) {
  const { s } = db;
  const { pollEveryMs, controlExpiryMs, logger } = db.options;

  const send = db.statement(
    'control_send',
    `WITH ins AS (
       INSERT INTO ${s}.control (id, environment, run_id, action, full_promote, reason, requested_by, subject, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, clock_timestamp())
       RETURNING environment, created_at)
     SELECT created_at, pg_notify($9, environment) FROM ins`,
  );
  // The first scan of many watchers started at once goes out as one statement (see coalesce.ts).
  const pending = coalescedRead<[string, string, number], { id: string; expired: boolean }>(
    db,
    db.statement(
      'control_pending',
      `SELECT i.k, c.id, c.created_at < clock_timestamp() - i.expiry_ms * interval '1 millisecond' AS expired
       FROM unnest($1::text[], $2::text[], $3::float8[]) WITH ORDINALITY AS i(environment, run_id, expiry_ms, k)
       CROSS JOIN LATERAL (
         SELECT id, seq, created_at FROM ${s}.control
         WHERE environment = i.environment AND (run_id IS NULL OR run_id = i.run_id)
           AND consumed_at IS NULL AND withdrawn_at IS NULL
         ORDER BY seq LIMIT 100) c
       ORDER BY i.k, c.seq`,
    ),
    (reads) =>
      reads.length === 1
        ? `list control requests of ${reads[0]![0]}`
        : `list control requests of ${reads.length} environments`,
  );
  const claim = db.statement(
    'control_claim',
    `UPDATE ${s}.control SET consumed_by = $2, consumed_at = clock_timestamp()
     WHERE id = $1 AND consumed_at IS NULL AND withdrawn_at IS NULL
     RETURNING ${columns}`,
  );
  const answer = db.statement(
    'control_reply',
    `WITH u AS (
       UPDATE ${s}.control SET reply_run_id = $2, reply_applied = $3, reply_message = $4, replied_at = clock_timestamp()
       WHERE id = $1 RETURNING id)
     SELECT pg_notify($5, id) FROM u`,
  );
  const withdraw = db.statement(
    'control_withdraw',
    `UPDATE ${s}.control SET withdrawn_at = clock_timestamp()
     WHERE environment = $1 AND id = $2 AND consumed_at IS NULL AND withdrawn_at IS NULL
     RETURNING id`,
  );
  const replyOf = db.statement(
    'control_reply_of',
    `SELECT action, withdrawn_at, reply_run_id, reply_applied, reply_message, replied_at
     FROM ${s}.control WHERE environment = $1 AND id = $2`,
  );

  /** A row read back, checked by the same rules as a request sent; a bad one is refused, not acted on. */
  function requestOf(row: ControlRow): ControlRequest {
    const request = checkControl({
      environment: row.environment,
      action: row.action as ControlAction,
      ...(row.run_id !== null ? { runId: row.run_id } : {}),
      ...(row.full_promote !== null ? { full: row.full_promote } : {}),
      ...(row.reason !== null ? { reason: row.reason } : {}),
      ...(row.requested_by !== null ? { by: row.requested_by } : {}),
      ...(row.subject !== null ? { subject: row.subject } : {}),
    });
    return { id: checkControlId(row.id), ...request, createdAt: row.created_at.toISOString() };
  }

  async function reply(id: string, runId: string | undefined, outcome: ControlOutcome): Promise<void> {
    const message =
      outcome.message === undefined
        ? null
        : db.label.redactor.string(String(outcome.message)).slice(0, reasonMaxLength);
    await db.query('store a control reply', answer, [
      id,
      runId ?? null,
      outcome.applied === true,
      message,
      channels.reply,
    ]);
  }

  return {
    async sendControl(input: ControlRequestInput): Promise<ControlRequest> {
      const request = checkControl(input);
      const id = randomBytes(12).toString('base64url');
      const rows = await db.query<{ created_at: Date }>('store a control request', send, [
        id,
        request.environment,
        request.runId ?? null,
        request.action,
        request.full ?? null,
        request.reason ?? null,
        request.by ?? null,
        request.subject ?? null,
        channels.control,
      ]);
      const createdAt = rows[0]!.created_at.toISOString();
      return {
        id,
        environment: request.environment,
        ...(request.runId !== undefined ? { runId: request.runId } : {}),
        action: request.action,
        ...(request.full !== undefined ? { full: request.full } : {}),
        ...(request.reason !== undefined ? { reason: request.reason } : {}),
        ...(request.by !== undefined ? { by: request.by } : {}),
        ...(request.subject !== undefined ? { subject: request.subject } : {}),
        createdAt,
      };
    },

    async watchControl(
      environment: string,
      runId: string,
      handler: (request: ControlRequest) => Promise<ControlOutcome>,
      ctx?: OperationContext,
    ): Promise<ControlSubscription> {
      environmentOf(environment);
      runIdOf(runId);
      let stopped = false;
      let scanning: Promise<void> | undefined;
      let again = false;
      let lastScanStart = Number.NEGATIVE_INFINITY;

      async function deliver(row: ControlRow, expired: boolean): Promise<void> {
        if (expired) {
          // A stale request (sent while no run was there to take it) must not steer a later run.
          await reply(row.id, undefined, {
            applied: false,
            message: `expired: nobody consumed it within ${controlExpiryMs} ms`,
          });
          return;
        }
        let request: ControlRequest;
        try {
          request = requestOf(row);
        } catch (err) {
          // Consumed already, so never retried and never in the way of the requests after it.
          await reply(row.id, undefined, { applied: false, message: (err as Error).message });
          return;
        }
        let outcome: ControlOutcome;
        try {
          outcome = await handler(request);
        } catch (err) {
          outcome = { applied: false, message: `the run failed to act on it: ${(err as Error).message}` };
        }
        await reply(row.id, runId, outcome);
      }

      async function scan(): Promise<void> {
        do {
          again = false;
          lastScanStart = performance.now();
          const ids = await pending(environment, runId, controlExpiryMs);
          for (const { id, expired } of ids) {
            if (stopped) return;
            const [row] = await db.query<ControlRow>('consume a control request', claim, [id, runId]);
            if (row) await deliver(row, expired); // else another watcher consumed it, or it was withdrawn
          }
          if (ids.length === 100) again = true;
        } while (again && !stopped);
      }

      function kick(): void {
        if (stopped) return;
        if (scanning) {
          again = true;
          return;
        }
        scanning = scan()
          .catch((err: unknown) => {
            logger.warn(
              `postgres-store: control requests for ${environment} could not be read: ${(err as Error).message}`,
            );
          })
          .finally(() => {
            scanning = undefined;
            if (again && !stopped) kick();
          });
      }

      const unsubscribe = await listener.subscribe(channels.control, (payload) => {
        if (payload === undefined || payload === environment) kick();
      });
      // Poll unless notifications have been heard without a gap since the last scan began.
      const poll = setInterval(() => {
        const since = listener.listeningSince;
        if (since === undefined || since > lastScanStart) kick();
      }, pollEveryMs);
      // Not unref'd: like a listening server, a subscription keeps its process alive until stopped.
      const stop = async () => {
        if (stopped) return;
        stopped = true;
        clearInterval(poll);
        ctx?.signal?.removeEventListener('abort', onAbort);
        await unsubscribe();
        await scanning;
      };
      const onAbort = () => void stop();
      ctx?.signal?.addEventListener('abort', onAbort, { once: true });
      // A watcher that subscribed while the LISTEN connection was being made was kicked once it listened.
      if (ctx?.signal?.aborted) await stop();
      else if (lastScanStart === Number.NEGATIVE_INFINITY && !scanning) kick();
      return { stop };
    },

    async waitForReply(
      environment: string,
      id: string,
      options: { timeoutMs: number; signal?: AbortSignal | undefined },
    ): Promise<ControlReply | undefined> {
      environmentOf(environment);
      checkControlId(id);
      const timeoutMs = Math.max(0, Number(options?.timeoutMs) || 0);
      const signal = options?.signal;
      const check = async (): Promise<ControlReply | 'withdrawn' | undefined> => {
        const [row] = await db.query<ReplyRow>('read a control reply', replyOf, [environment, id]);
        if (!row) return undefined;
        if (row.replied_at) {
          return {
            id,
            ...(row.reply_run_id !== null ? { runId: row.reply_run_id } : {}),
            action: row.action as ControlAction,
            applied: row.reply_applied === true,
            ...(row.reply_message !== null ? { message: row.reply_message } : {}),
            at: row.replied_at.toISOString(),
          };
        }
        return row.withdrawn_at ? 'withdrawn' : undefined;
      };
      if (signal?.aborted) return undefined;
      return new Promise<ControlReply | undefined>((resolve, reject) => {
        let done = false;
        let checking = false;
        let recheck = false;
        let unsubscribe: (() => Promise<void>) | undefined;
        const finish = (value: ControlReply | undefined, err?: unknown) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          clearInterval(poll);
          signal?.removeEventListener('abort', onAbort);
          void unsubscribe?.();
          if (err) reject(err);
          else resolve(value);
        };
        const run = async () => {
          if (done) return;
          if (checking) {
            recheck = true;
            return;
          }
          checking = true;
          try {
            do {
              recheck = false;
              const found = await check();
              if (found === 'withdrawn') return finish(undefined);
              if (found) return finish(found);
            } while (recheck && !done);
          } catch (err) {
            // Still no reply within the time asked for is the answer; a database error is only reported.
            logger.debug(`postgres-store: waiting for reply ${id}: ${(err as Error).message}`);
          } finally {
            checking = false;
          }
        };
        const onAbort = () => finish(undefined);
        const timer = setTimeout(() => finish(undefined), timeoutMs);
        const poll = setInterval(() => void run(), pollEveryMs);
        signal?.addEventListener('abort', onAbort, { once: true });
        listener
          .subscribe(channels.reply, (payload) => {
            if (payload === undefined || payload === id) void run();
          })
          .then(
            (off) => {
              if (done) void off();
              else unsubscribe = off;
              void run();
            },
            (err: unknown) => finish(undefined, err),
          );
      });
    },

    async withdrawControl(environment: string, id: string): Promise<boolean> {
      environmentOf(environment);
      checkControlId(id);
      const rows = await db.query('withdraw a control request', withdraw, [environment, id]);
      return rows.length > 0;
    },
  };
}
