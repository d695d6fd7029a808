const kReleaseError = Symbol.for('codegraph.release.error');

/** Options every {@link ReleaseError} accepts. */
export interface ReleaseErrorOptions {
  /** The error that caused this one. */
  cause?: unknown;
  /** The plugin (target, strategy, verifier, backup, notifier, store) that failed, when one did. */
  plugin?: string;
  /** The engine phase in which the error happened. */
  phase?: string;
  /** Whether repeating the same call may succeed. Defaults to the class's own policy. */
  retryable?: boolean;
  /** Structured facts about the failure; never holds secrets. */
  details?: Record<string, unknown>;
}

/**
 * Base class of every error the SDK throws. Branch on {@link ReleaseError.code}, never on the message.
 *
 * `instanceof` works across two copies of the package (a plugin may load its own copy of core):
 * the brand is a `Symbol.for` key checked by `Symbol.hasInstance`.
 *
 * @example
 * ```ts
 * try { await engine.rollback({ to: 'v1.2.2', reason, confirm }) }
 * catch (err) { if (err instanceof ReleaseError && err.code === 'CG_ROLLBACK_UNCONFIRMED') ... }
 * ```
 */
export class ReleaseError extends Error {
  static readonly code: ErrorCode = 'CG_ERROR';
  static readonly retryable: boolean = false;
  override name = 'ReleaseError';
  /** The stable code: each subclass narrows it to its own literal, so `switch (err.code)` narrows. */
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly plugin: string | undefined;
  readonly phase: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(message: string, options: ReleaseErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const ctor = new.target as typeof ReleaseError;
    this.name = ctor.name;
    this.code = ctor.code;
    this.retryable = options.retryable ?? ctor.retryable;
    this.plugin = options.plugin;
    this.phase = options.phase;
    this.details = options.details;
    Object.defineProperty(this, kReleaseError, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    if ((value as Record<symbol, unknown>)[kReleaseError] !== true) return false;
    if (this === ReleaseError) return true;
    // A subclass matches its own code (and the codes of its subclasses, through the prototype chain).
    let proto: unknown = Object.getPrototypeOf(value);
    while (proto && proto !== Object.prototype) {
      const ctor = (proto as { constructor?: { code?: string } }).constructor;
      if (ctor?.code === this.code) return true;
      proto = Object.getPrototypeOf(proto);
    }
    return (value as { code?: string }).code === this.code;
  }

  /** A JSON form, safe for journals and events. */
  toJSON(): SerializedError {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      ...(this.plugin ? { plugin: this.plugin } : {}),
      ...(this.phase ? { phase: this.phase } : {}),
      ...(this.details ? { details: this.details } : {}),
      retryable: this.retryable,
      ...(this.cause !== undefined ? { cause: serializeError(this.cause) } : {}),
    };
  }
}

/** The journal's and events' form of an error. */
export interface SerializedError {
  name: string;
  code: string;
  message: string;
  plugin?: string;
  phase?: string;
  retryable?: boolean;
  details?: Record<string, unknown>;
  cause?: SerializedError;
}

/** Configuration or call arguments are invalid. Nothing was changed. */
export class ConfigInvalidError extends ReleaseError {
  static override readonly code = 'CG_CONFIG_INVALID';
  declare readonly code: typeof ConfigInvalidError.code;
}
/** An emergency rollback was asked for without `confirm: 'CONFIRM'`. Nothing was changed. */
export class RollbackUnconfirmedError extends ReleaseError {
  static override readonly code = 'CG_ROLLBACK_UNCONFIRMED';
  declare readonly code: typeof RollbackUnconfirmedError.code;
}
/** The version is not one the environment's history knows as released and good. Nothing was changed. */
export class VersionUnknownError extends ReleaseError {
  static override readonly code = 'CG_VERSION_UNKNOWN';
  declare readonly code: typeof VersionUnknownError.code;
}
/** Another engine holds the environment's lock. Nothing was changed. */
export class EnvironmentLockedError extends ReleaseError {
  static override readonly code = 'CG_ENVIRONMENT_LOCKED';
  declare readonly code: typeof EnvironmentLockedError.code;
}
/** The target could not be reached or refused an operation. Often transient. */
export class TargetUnavailableError extends ReleaseError {
  static override readonly code = 'CG_TARGET_UNAVAILABLE';
  declare readonly code: typeof TargetUnavailableError.code;
  static override readonly retryable = true;
}
/** A target operation failed for a reason that retrying will not fix (bad command, port in use...). */
export class TargetOperationError extends ReleaseError {
  static override readonly code = 'CG_TARGET_FAILED';
  declare readonly code: typeof TargetOperationError.code;
}
/** A strategy needs an optional capability that the target lacks (e.g. traffic routing). */
export class CapabilityMissingError extends ReleaseError {
  static override readonly code = 'CG_CAPABILITY_MISSING';
  declare readonly code: typeof CapabilityMissingError.code;
}
/** An analysis gate failed: the version under test broke a threshold. */
export class AnalysisFailedError extends ReleaseError {
  static override readonly code = 'CG_ANALYSIS_FAILED';
  declare readonly code: typeof AnalysisFailedError.code;
}
/** A verifier could not measure (Prometheus down, bad query...). */
export class VerifierError extends ReleaseError {
  static override readonly code = 'CG_VERIFIER_FAILED';
  declare readonly code: typeof VerifierError.code;
  static override readonly retryable = true;
}
/** A backup could not be created. */
export class BackupFailedError extends ReleaseError {
  static override readonly code = 'CG_BACKUP_FAILED';
  declare readonly code: typeof BackupFailedError.code;
}
/** A backup failed verification: a file is missing, truncated or its checksum differs. */
export class BackupCorruptError extends ReleaseError {
  static override readonly code = 'CG_BACKUP_CORRUPT';
  declare readonly code: typeof BackupCorruptError.code;
}
/** No backup matches the id or point in time asked for. */
export class BackupNotFoundError extends ReleaseError {
  static override readonly code = 'CG_BACKUP_NOT_FOUND';
  declare readonly code: typeof BackupNotFoundError.code;
}
/** A notifier could not deliver. Never fails a release; reported as an event and a metric. */
export class NotifyFailedError extends ReleaseError {
  static override readonly code = 'CG_NOTIFY_FAILED';
  declare readonly code: typeof NotifyFailedError.code;
  static override readonly retryable = true;
}
/** A notifier destination asked us to slow down (HTTP 429). */
export class RateLimitedError extends ReleaseError {
  static override readonly code = 'CG_RATE_LIMITED';
  declare readonly code: typeof RateLimitedError.code;
  static override readonly retryable = true;
}
/** The journal does not match what the strategy asks for on replay: the strategy is not deterministic. */
export class JournalDivergedError extends ReleaseError {
  static override readonly code = 'CG_JOURNAL_DIVERGED';
  declare readonly code: typeof JournalDivergedError.code;
}
/** The store failed to read or write the journal, history or lock. */
export class StoreError extends ReleaseError {
  static override readonly code = 'CG_STORE_FAILED';
  declare readonly code: typeof StoreError.code;
}
/** No run has this id. */
export class RunNotFoundError extends ReleaseError {
  static override readonly code = 'CG_RUN_NOT_FOUND';
  declare readonly code: typeof RunNotFoundError.code;
}
/** The operation was cancelled through its AbortSignal. */
export class AbortedError extends ReleaseError {
  static override readonly code = 'CG_ABORTED';
  declare readonly code: typeof AbortedError.code;
}
/** The operation did not finish within its time limit. */
export class TimeoutError extends ReleaseError {
  static override readonly code = 'CG_TIMEOUT';
  declare readonly code: typeof TimeoutError.code;
  static override readonly retryable = true;
}
/** A plugin threw something that is not a {@link ReleaseError}; the original is the `cause`. */
export class PluginFailedError extends ReleaseError {
  static override readonly code = 'CG_PLUGIN_FAILED';
  declare readonly code: typeof PluginFailedError.code;
}

/** An earlier run of this environment was interrupted (its process died): resume it or roll back first. */
export class RunInterruptedError extends ReleaseError {
  static override readonly code = 'CG_RUN_INTERRUPTED';
  declare readonly code: typeof RunInterruptedError.code;
}

/**
 * The run's lease on its environment was lost (another holder took it over, or it expired): the store
 * refused the write, and the run stops acting on the target at its next step.
 */
export class LockLostError extends ReleaseError {
  static override readonly code = 'CG_LOCK_LOST';
  declare readonly code: typeof LockLostError.code;
}
/** The store cannot be reached (database down, connection lost): retry, then resume the run. */
export class StoreUnavailableError extends ReleaseError {
  static override readonly code = 'CG_STORE_UNAVAILABLE';
  declare readonly code: typeof StoreUnavailableError.code;
  static override readonly retryable = true;
}
/** A control request (promote, abort, approve, supersede) is malformed or not allowed; it was set aside. */
export class ControlInvalidError extends ReleaseError {
  static override readonly code = 'CG_CONTROL_INVALID';
  declare readonly code: typeof ControlInvalidError.code;
}

/**
 * Every stable error code the SDK uses, in one list; `docs/operations.md`'s error table documents
 * exactly these (a test checks both ways).
 *
 * @example
 * ```ts
 * const exit: Partial<Record<ErrorCode, number>> = { CG_CONFIG_INVALID: 2, CG_LOCK_LOST: 5 }
 * errorCodes.includes('CG_TIMEOUT') // true
 * ```
 */
export const errorCodes = [
  'CG_ERROR',
  'CG_CONFIG_INVALID',
  'CG_ROLLBACK_UNCONFIRMED',
  'CG_VERSION_UNKNOWN',
  'CG_ENVIRONMENT_LOCKED',
  'CG_TARGET_UNAVAILABLE',
  'CG_TARGET_FAILED',
  'CG_CAPABILITY_MISSING',
  'CG_ANALYSIS_FAILED',
  'CG_VERIFIER_FAILED',
  'CG_BACKUP_FAILED',
  'CG_BACKUP_CORRUPT',
  'CG_BACKUP_NOT_FOUND',
  'CG_NOTIFY_FAILED',
  'CG_RATE_LIMITED',
  'CG_JOURNAL_DIVERGED',
  'CG_STORE_FAILED',
  'CG_RUN_NOT_FOUND',
  'CG_ABORTED',
  'CG_TIMEOUT',
  'CG_PLUGIN_FAILED',
  'CG_RUN_INTERRUPTED',
  'CG_ARTIFACT_INVALID',
  'CG_MIGRATION_FAILED',
  'CG_RECOVERY_UNCONFIRMED',
  'CG_LOCK_LOST',
  'CG_STORE_UNAVAILABLE',
  'CG_CONTROL_INVALID',
] as const;

/** A stable error code: one of {@link errorCodes}. */
export type ErrorCode = (typeof errorCodes)[number];

/** The same union, by its earlier name. */
export type ReleaseErrorCode = ErrorCode;

/**
 * Whether a value is one of the SDK's error codes (for codes read back from a journal).
 *
 * @example
 * ```ts
 * const code = isErrorCode(recorded.code) ? recorded.code : 'CG_PLUGIN_FAILED'
 * ```
 */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (errorCodes as readonly string[]).includes(value);
}

/** An artifact failed verification (signature, checksum, missing entry) or clashes with an installed one. Nothing was changed. */
export class ArtifactInvalidError extends ReleaseError {
  static override readonly code = 'CG_ARTIFACT_INVALID';
  declare readonly code: typeof ArtifactInvalidError.code;
}
/** A migration step failed; the steps applied before it were undone in reverse order. */
export class MigrationFailedError extends ReleaseError {
  static override readonly code = 'CG_MIGRATION_FAILED';
  declare readonly code: typeof MigrationFailedError.code;
}
/** A recovery was asked for without `confirm: 'CONFIRM'`. Nothing was changed. */
export class RecoveryUnconfirmedError extends ReleaseError {
  static override readonly code = 'CG_RECOVERY_UNCONFIRMED';
  declare readonly code: typeof RecoveryUnconfirmedError.code;
}

/** Turns anything thrown into the journal's error form. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof ReleaseError) return err.toJSON();
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      name: err.name,
      code: typeof code === 'string' ? code : 'CG_PLUGIN_FAILED',
      message: err.message,
      ...(err.cause !== undefined ? { cause: serializeError(err.cause) } : {}),
    };
  }
  return { name: 'Error', code: 'CG_PLUGIN_FAILED', message: String(err) };
}

/** Whether an error may succeed on a second try: a {@link ReleaseError} says so, network errors do. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ReleaseError) return err.retryable;
  const code = (err as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' &&
    /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EAI_AGAIN|UND_ERR_(CONNECT_TIMEOUT|SOCKET|HEADERS_TIMEOUT|BODY_TIMEOUT|CLOSED))$/.test(
      code,
    )
  );
}

/** Wraps a plugin's error with the plugin's name and the phase, keeping a {@link ReleaseError}'s code. */
export function wrapPluginError(err: unknown, plugin: string, phase: string): ReleaseError {
  if (err instanceof ReleaseError) {
    if (err.plugin && err.phase) return err;
    Object.defineProperty(err, 'plugin', { value: err.plugin ?? plugin });
    Object.defineProperty(err, 'phase', { value: err.phase ?? phase });
    return err;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new PluginFailedError(`${plugin} failed during ${phase}: ${message}`, {
    cause: err,
    plugin,
    phase,
    retryable: isRetryable(err),
  });
}

/** Throws {@link AbortedError} when the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what = 'operation'): void {
  if (signal?.aborted) {
    throw new AbortedError(`${what} was cancelled`, { cause: signal.reason });
  }
}
