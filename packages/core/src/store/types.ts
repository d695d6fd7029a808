import type { OperationContext } from '../context.js';
import type { SerializedError } from '../errors.js';
import type { RunKind, RunStatus } from '../events/types.js';

/** Who holds an environment's lock. */
export interface LockOwner {
  runId: string;
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  since: string;
}

/** A held lock. */
export interface Lock {
  readonly environment: string;
  readonly owner: LockOwner;
  /** Releases the lock; a no-op when it is already released. */
  release(): Promise<void>;
}

/** How a run was started: enough to replay it. */
export interface RunHeader {
  runId: string;
  kind: RunKind;
  environment: string;
  /** The version asked for. */
  version: string;
  /** The version serving when the run started. */
  from?: string | undefined;
  reason?: string | undefined;
  startedAt: string;
  strategy: string;
  target: string;
  /** Free-form, JSON-safe data recorded with the run (labels, a migration record...). */
  data?: Record<string, unknown> | undefined;
}

/** One line of a run's journal. Steps are journaled when they start and when they end. */
export type JournalEntry =
  | { seq: number; time: string; type: 'run'; header: RunHeader }
  | { seq: number; time: string; type: 'step-started'; key: string; input?: unknown }
  | { seq: number; time: string; type: 'step-finished'; key: string; result: unknown }
  | { seq: number; time: string; type: 'step-failed'; key: string; error: SerializedError }
  | { seq: number; time: string; type: 'note'; message: string; data?: unknown }
  | { seq: number; time: string; type: 'finished'; status: RunStatus; serving?: string; reason?: string };

/** A journal entry before the store numbers and timestamps it. */
export type JournalEntryInput = JournalEntry extends infer E
  ? E extends { seq: number; time: string }
    ? Omit<E, 'seq' | 'time'>
    : never
  : never;

/** One finished run in an environment's history. */
export interface HistoryEntry {
  runId: string;
  kind: RunKind;
  version: string;
  from?: string | undefined;
  status: RunStatus;
  startedAt: string;
  finishedAt: string;
  /** The version serving after the run. */
  serving?: string | undefined;
  backupId?: string | undefined;
  /** Analysis verdicts by gate name. */
  verdicts: Record<string, string>;
  reason?: string | undefined;
  /** The migration record a release carried, for the rollback's database phase. */
  migration?: unknown;
}

/** A run as listed. */
export interface RunSummary {
  runId: string;
  environment: string;
  kind: RunKind;
  version: string;
  startedAt: string;
  /** Absent while the run has not finished (running, or its process died). */
  status?: RunStatus | undefined;
}

/**
 * Remembers runs, history and locks. The embedded default is {@link fileStore}; a shared
 * database can implement the same interface so engines on several hosts coordinate.
 */
export interface Store {
  readonly name: string;
  /**
   * Takes the environment's lock for `owner`. Throws `CG_ENVIRONMENT_LOCKED` when a live owner
   * holds it; takes it over when the owner is dead (its process is gone, or it stopped refreshing).
   */
  lock(environment: string, owner: LockOwner, ctx?: OperationContext): Promise<Lock>;
  /** Reads who holds the lock, without taking it. */
  lockOwner(environment: string): Promise<LockOwner | undefined>;
  /** Appends to a run's journal durably (fsync) before returning. */
  append(runId: string, entry: JournalEntryInput): Promise<JournalEntry>;
  /** Reads a whole journal. Throws `CG_RUN_NOT_FOUND` for an unknown id. */
  read(runId: string): Promise<JournalEntry[]>;
  /** Lists runs, newest first. */
  runs(environment?: string): Promise<RunSummary[]>;
  /** Appends a finished run to the environment's history. */
  recordHistory(environment: string, entry: HistoryEntry): Promise<void>;
  /** The environment's history, oldest first. */
  history(environment: string): Promise<HistoryEntry[]>;
}
