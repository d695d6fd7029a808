import {
  type Fence,
  type HistoryEntry,
  type JournalEntry,
  type JournalEntryInput,
  LockLostError,
  RunNotFoundError,
  type RunSummary,
  type Store,
} from '@codegraph/release-core';
import { createAppender } from './append.js';
import { coalescedRead } from './coalesce.js';
import { createControl } from './control.js';
import { createDb } from './db.js';
import { plugin } from './errors.js';
import { createLeases } from './leases.js';
import { createListener } from './listener.js';
import { type PostgresStoreOptions, resolveOptions } from './options.js';
import {
  checkEntry,
  checkFence,
  checkHistory,
  environmentOf,
  historyRow,
  journalRow,
  runIdOf,
  toJson,
} from './validate.js';

interface RunRow {
  run_id: string;
  environment: string;
  kind: RunSummary['kind'];
  version: string;
  started_at: Date;
  status: RunSummary['status'] | null;
}

/**
 * A {@link Store} on PostgreSQL, with `close()` always present: it stops lease refreshes (their runs are
 * told they lost the lease), closes the LISTEN connection, and ends the pool the store made.
 *
 * @example
 * ```ts
 * const store: PostgresStore = postgresStore({ connectionString: process.env.DATABASE_URL })
 * await store.close()
 * ```
 */
export interface PostgresStore extends Store {
  close(): Promise<void>;
}

/**
 * The store on PostgreSQL: engines on several hosts share one environment's lease (with fencing tokens),
 * journals, history and control requests. The schema is created on first use.
 *
 * @example
 * ```ts
 * import { createReleaseEngine } from '@codegraph/release-core'
 * import { postgresStore } from '@codegraph/store-postgres'
 *
 * const store = postgresStore({ connectionString: process.env.DATABASE_URL })
 * const engine = createReleaseEngine({ environment: 'production', store, target, strategy })
 * try { await engine.release({ version: 'v1.2.3' }) } finally { await store.close() }
 * ```
 */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  const db = createDb(resolveOptions(options));
  const { s } = db;
  const { maxEntryBytes, schema } = db.options;
  const channels = { control: `${schema}_control`, reply: `${schema}_reply` };
  const leases = createLeases(db);
  const listener = createListener(db, [channels.control, channels.reply]);
  const control = createControl(db, listener, channels);

  const appender = createAppender(db);
  // History writes are fenced like appends (see append.ts): FOR SHARE holds off a takeover until commit.
  const fenceCte = (env: string, token: string) =>
    `lease AS (SELECT 1 FROM ${s}.leases WHERE environment = ${env} AND token = ${token} AND expires_at > clock_timestamp() FOR SHARE)`;
  const noFence = 'lease AS (SELECT 1)';
  const historyText = (fenced: boolean) =>
    `WITH ${fenced ? fenceCte('$1', '$4') : noFence}
     INSERT INTO ${s}.history (environment, run_id, entry, recorded_at)
     SELECT $1, $2, $3::json, clock_timestamp() FROM lease RETURNING id`;
  const record = db.statement('history_add', historyText(false));
  const recordFenced = db.statement('history_add_fenced', historyText(true));
  const readJournal = db.statement(
    'journal_read',
    `SELECT seq, at, type, entry FROM ${s}.journal WHERE run_id = $1 ORDER BY seq`,
  );
  // Reads of one environment's history or runs made at once by many runs (a platform starting many
  // releases) go out together: see coalesce.ts.
  const listHistory = coalescedRead<[string], { id: string; entry: unknown }>(
    db,
    db.statement(
      'history_read',
      `SELECT i.k, h.id, h.entry FROM unnest($1::text[]) WITH ORDINALITY AS i(environment, k)
       JOIN ${s}.history h ON h.environment = i.environment
       ORDER BY i.k, h.id`,
    ),
    (reads) =>
      reads.length === 1
        ? `read history of ${reads[0]![0]}`
        : `read the history of ${reads.length} environments`,
  );
  const runColumns = 'run_id, environment, kind, version, started_at, status';
  const runsAll = db.statement(
    'runs_all',
    `SELECT ${runColumns} FROM ${s}.runs WHERE environment IS NOT NULL ORDER BY started_at DESC, run_id DESC`,
  );
  const runsOf = coalescedRead<[string], RunRow>(
    db,
    db.statement(
      'runs_env',
      `SELECT i.k, ${runColumns.replace(/(\w+)/g, 'r.$1')} FROM unnest($1::text[]) WITH ORDINALITY AS i(environment, k)
       JOIN ${s}.runs r ON r.environment = i.environment
       ORDER BY i.k, r.started_at DESC, r.run_id DESC`,
    ),
    (reads) =>
      reads.length === 1
        ? `list the runs of ${reads[0]![0]}`
        : `list the runs of ${reads.length} environments`,
  );

  function lost(fence: Fence, what: string): LockLostError {
    leases.refused(fence.environment, fence.token);
    return new LockLostError(
      `the lease on ${fence.environment} (token ${fence.token}) is no longer held: the ${what} was refused and nothing was written; the run stops acting on the target`,
      { plugin, details: { environment: fence.environment, token: fence.token } },
    );
  }

  const store: PostgresStore = {
    name: 'postgres-store',
    lock: leases.lock,
    lockOwner: leases.lockOwner,

    async append(runId, entry: JournalEntryInput, fence?: Fence): Promise<JournalEntry> {
      runIdOf(runId);
      const head = checkEntry(runId, entry);
      checkFence(fence);
      const text = toJson(entry, `journal entry of run ${runId}`, maxEntryBytes);
      await db.ready();
      const row = await appender.append({
        runId,
        type: entry.type,
        text,
        head,
        status: entry.type === 'finished' ? entry.status : null,
        fence,
      });
      if (!row) throw lost(fence!, 'journal append');
      return { ...entry, seq: row.seq, time: row.at.toISOString() } as JournalEntry;
    },

    async read(runId) {
      runIdOf(runId);
      const rows = await db.query<{ seq: number; at: Date; type: string; entry: unknown }>(
        `read the journal of run ${runId}`,
        readJournal,
        [runId],
      );
      if (rows.length === 0)
        throw new RunNotFoundError(`no run "${runId}" in ${db.label.where} (schema ${schema})`, { plugin });
      return rows.map((row) => journalRow(runId, row));
    },

    async runs(environment) {
      if (environment !== undefined) environmentOf(environment);
      const rows =
        environment === undefined
          ? await db.query<RunRow>('list runs', runsAll, [])
          : await runsOf(environment);
      return rows.map((r) => ({
        runId: r.run_id,
        environment: r.environment,
        kind: r.kind,
        version: r.version,
        startedAt: r.started_at.toISOString(),
        status: r.status ?? undefined,
      }));
    },

    async recordHistory(environment, entry: HistoryEntry, fence?: Fence) {
      environmentOf(environment);
      checkHistory(entry);
      checkFence(fence, environment);
      const text = toJson(entry, `history entry of run ${entry.runId}`, maxEntryBytes);
      const rows = await db.query(
        `record history of ${environment}`,
        fence ? recordFenced : record,
        fence ? [environment, entry.runId, text, fence.token] : [environment, entry.runId, text],
      );
      if (rows.length === 0) throw lost(fence!, 'history write');
    },

    async history(environment) {
      environmentOf(environment);
      const rows = await listHistory(environment);
      return rows.map((r) => historyRow(environment, r.entry, Number(r.id)));
    },

    sendControl: control.sendControl,
    watchControl: control.watchControl,
    waitForReply: control.waitForReply,
    withdrawControl: control.withdrawControl,

    async close() {
      if (db.closed) return;
      leases.closeAll();
      await listener.close();
      await db.close();
    },
  };
  return store;
}
