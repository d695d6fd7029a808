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
  /**
   * The owner process's start time (see `processStartTime` in `/kit`), so a recycled PID is not taken
   * for the owner. Optional: a store fills it in for an owner on its own host when it is absent.
   */
  processStart?: string | undefined;
}

/**
 * A held lease on an environment. The store refreshes it while it is held; whoever takes it over
 * later gets a greater {@link Lock.token}, and every write carrying an older token is refused
 * (`CG_LOCK_LOST`): a paused process that wakes up after losing its lease can do no harm.
 */
export interface Lock {
  readonly environment: string;
  readonly owner: LockOwner;
  /** The fencing token: strictly greater than the token of every earlier holder of this environment. */
  readonly token: number;
  /**
   * Aborted (with a `CG_LOCK_LOST` reason) as soon as the store learns the lease is lost: a refresh
   * found another holder, or the lease could not be refreshed before it expired. The engine stops
   * acting on the target when it fires.
   */
  readonly lost: AbortSignal;
  /** Releases the lock; a no-op when it is already released or lost. */
  release(): Promise<void>;
}

/** The lease a write is made under: the store refuses it (`CG_LOCK_LOST`) unless the token is still current. */
export interface Fence {
  environment: string;
  token: number;
}

/** What another process may ask of a run in progress. */
export type ControlAction = 'promote' | 'abort' | 'approve' | 'supersede';

/**
 * A request addressed to a run in progress, from any host: a CLI, a platform, a chat-ops bot.
 * Control is data: it is stored, consumed exactly once by the run it addresses, and answered.
 */
export interface ControlRequest {
  /** Unique id given by the store: 8-64 characters of `[A-Za-z0-9_-]`. */
  id: string;
  /** The environment (or pipeline) the request is for. */
  environment: string;
  /** The run it addresses; absent: whichever run holds the environment's lock when it is consumed. */
  runId?: string | undefined;
  action: ControlAction;
  /** `promote`: skip every remaining pause. */
  full?: boolean | undefined;
  /** Why (abort, supersede), kept in the journal; at most 1,000 characters. */
  reason?: string | undefined;
  /** Who asked: the approver's identity for `approve` (an identifier). */
  by?: string | undefined;
  /** What an `approve` approves (a pipeline stage and version, e.g. `production@v1.2.3`). */
  subject?: string | undefined;
  /** ISO time the store accepted it. */
  createdAt: string;
}

/** A control request before the store gives it an id and a time. */
export type ControlRequestInput = Omit<ControlRequest, 'id' | 'createdAt'>;

/** The answer of the run that consumed a request (or of the store that refused it). */
export interface ControlReply {
  id: string;
  /** The run that consumed it; absent when the store refused it before any run saw it. */
  runId?: string | undefined;
  /** The request's action; absent when the request was refused because its action was unreadable or unknown. */
  action?: ControlAction | undefined;
  /** Whether the run acted on it. */
  applied: boolean;
  /** Why not, or what was done. */
  message?: string | undefined;
  /** ISO time of the answer. */
  at: string;
}

/** What a run's control handler answers for one request. */
export interface ControlOutcome {
  applied: boolean;
  message?: string | undefined;
}

/** A running subscription to control requests. */
export interface ControlSubscription {
  /** Stops delivering; resolves once no handler call is in progress. */
  stop(): Promise<void>;
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
  /**
   * Appends to a run's journal durably (fsync, or a committed transaction) before returning. With a
   * `fence`, the append happens only if the fence's token is still the environment's current lease
   * token, checked in the same atomic step; otherwise it throws `CG_LOCK_LOST` and writes nothing.
   * A write that cannot be completed (full disk, lost connection) throws and is never acknowledged.
   */
  append(runId: string, entry: JournalEntryInput, fence?: Fence): Promise<JournalEntry>;
  /** Reads a whole journal. Throws `CG_RUN_NOT_FOUND` for an unknown id. */
  read(runId: string): Promise<JournalEntry[]>;
  /** Lists runs, newest first. */
  runs(environment?: string): Promise<RunSummary[]>;
  /** Appends a finished run to the environment's history; fenced like {@link Store.append}. */
  recordHistory(environment: string, entry: HistoryEntry, fence?: Fence): Promise<void>;
  /** The environment's history, oldest first. */
  history(environment: string): Promise<HistoryEntry[]>;
  /**
   * Stores a control request and returns it with its id. Validates it first (`CG_CONTROL_INVALID`:
   * unknown action, bad identifiers, oversized reason); nothing is stored for a bad one.
   */
  sendControl(request: ControlRequestInput): Promise<ControlRequest>;
  /**
   * Delivers the requests for `environment` addressed to `runId` (or to no run) to `handler`, each
   * exactly once across every host and process watching, in the order they were sent, and stores
   * the handler's outcome as the reply. A request that fails validation when read back is refused
   * (reply `applied: false`) and set aside, never retried and never blocking the ones after it. A
   * store may refuse as expired a request nobody consumed for a long while (the file store: 60 s), so a
   * stale request never reaches a later run. The handler is called one request at a time; a handler
   * that throws is answered `applied: false` with its message.
   */
  watchControl(
    environment: string,
    runId: string,
    handler: (request: ControlRequest) => Promise<ControlOutcome>,
    ctx?: OperationContext,
  ): Promise<ControlSubscription>;
  /**
   * Waits for the reply to a request; `undefined` when none came within `timeoutMs` (or before the
   * signal aborted). Never waits longer than `timeoutMs`.
   */
  waitForReply(
    environment: string,
    id: string,
    options: { timeoutMs: number; signal?: AbortSignal | undefined },
  ): Promise<ControlReply | undefined>;
  /**
   * Withdraws a request nobody has consumed yet. Returns false when a run already consumed it (its
   * reply tells what happened). Exactly one of withdraw and consume wins.
   */
  withdrawControl(environment: string, id: string): Promise<boolean>;
  /** Releases connections and timers. Optional: the file store holds none between calls. */
  close?(): Promise<void>;
}
