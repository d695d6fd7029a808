import { ReleaseError, wrapPluginError } from '../errors.js';
import { withDeadline } from '../kit/deadline.js';
import type { LogFields, Logger } from '../logger.js';
import { type RetryOptions, withRetry } from '../util/retry.js';

/** The kinds of plugin the engine calls, each with its own deadline. */
export type PluginKind =
  | 'target'
  | 'verifier'
  | 'backup'
  | 'notifier'
  | 'migration'
  | 'databaseRollback'
  | 'recovery'
  | 'store';

/**
 * The engine's own deadline for each kind of plugin call, in milliseconds. The engine stops waiting
 * for a call when its deadline passes (or the run is aborted, or loses its lock), whether or not the
 * plugin honours its `AbortSignal`; the call is then reported as abandoned (a `plugin.abandoned`
 * event and the `codegraph_release_plugin_calls_abandoned_total` metric).
 *
 * @example
 * ```ts
 * createReleaseEngine({ ..., deadlines: { targetMs: 120_000, backupMs: 30 * 60_000 } })
 * ```
 */
export interface PluginDeadlines {
  /** One target operation (`describe`, `provision`, `route`, `retire`), its retries included. @default 600_000 */
  targetMs?: number;
  /** One verifier measurement. @default 120_000 */
  verifierMs?: number;
  /** One backup operation (`create`, `list`, `verify`, `restore`). @default 3_600_000 */
  backupMs?: number;
  /** One migration step's `apply` or `undo`. @default 3_600_000 */
  migrationMs?: number;
  /** The emergency rollback's `databaseRollback` hook. @default 3_600_000 */
  databaseRollbackMs?: number;
  /** A recovery's `stop` or `start` hook. @default 600_000 */
  recoveryMs?: number;
  /**
   * One store call (`append`, `lock`, `runs`, …; `waitForReply` gets this on top of the wait it asks for).
   * A store that does not answer in time fails the run's step with `CG_STORE_UNAVAILABLE`. @default 60_000
   */
  storeMs?: number;
  /**
   * How long `close()` waits for notifier deliveries still in flight, and for each notifier's
   * `close()`. (One delivery is bounded by `delivery.timeoutMs`.) @default 15_000
   */
  closeMs?: number;
}

/**
 * The defaults of {@link PluginDeadlines}, in one place.
 *
 * @example
 * ```ts
 * createReleaseEngine({ ..., deadlines: { targetMs: pluginDeadlineDefaults.targetMs / 2 } })
 * ```
 */
export const pluginDeadlineDefaults = Object.freeze({
  targetMs: 600_000,
  verifierMs: 120_000,
  backupMs: 3_600_000,
  migrationMs: 3_600_000,
  databaseRollbackMs: 3_600_000,
  recoveryMs: 600_000,
  storeMs: 60_000,
  closeMs: 15_000,
} satisfies Required<PluginDeadlines>);

/** A plugin call the engine stopped waiting for. */
export interface AbandonedCall {
  kind: PluginKind;
  plugin: string;
  method: string;
  phase: string;
  /** Why the engine stopped waiting: the deadline passed, or the run was aborted or lost its lock. */
  reason: 'deadline' | 'aborted';
  afterMs: number;
}

/** One plugin call, as {@link PluginCalls.call} takes it. */
export interface PluginCall {
  kind: PluginKind;
  plugin: string;
  method: string;
  phase: string;
  /** The caller's signal (the run's): aborting it stops waiting at once. */
  signal?: AbortSignal | undefined;
  /** Retries of retryable failures inside the deadline. @default none */
  retry?: RetryOptions | undefined;
  /** The deadline for this call instead of its kind's. */
  deadlineMs?: number | undefined;
  /**
   * Errors the plugin throws pass through as they are (the caller classifies them: a gate reads a
   * plain error as a retryable measurement error). Deadline and halt errors are the engine's. @default false
   */
  untagged?: boolean | undefined;
}

/** A logger whose every line carries the plugin and phase, as semantic-release scopes one per plugin. */
export function scopeLogger(logger: Logger, fields: LogFields): Logger {
  const merge = (f?: LogFields) => (f ? { ...fields, ...f } : fields);
  return {
    debug: (m, f) => logger.debug(m, merge(f)),
    info: (m, f) => logger.info(m, merge(f)),
    warn: (m, f) => logger.warn(m, merge(f)),
    error: (m, f) => logger.error(m, merge(f)),
  };
}

/**
 * The one place the engine calls plugins (semantic-release's `normalize.js` idea): each call is logged,
 * gets a logger scoped to its plugin, is raced against the engine's deadline for its kind (and against
 * the run's signal and the `halt` signal, aborted when the run loses its lock or its store), has its
 * errors tagged with the plugin and phase, and is reported when it is abandoned.
 */
export class PluginCalls {
  constructor(
    private readonly deadlines: PluginDeadlines,
    private readonly logger: Logger,
    private readonly onAbandoned: (call: AbandonedCall) => void,
    /** Aborted when the run must stop acting (lock lost, store gone): no plugin call starts after it. */
    private readonly halt?: AbortSignal,
  ) {}

  /** The deadline of a kind of call. */
  deadline(kind: PluginKind): number {
    // A notifier's deadline is its delivery's (`delivery.timeoutMs`), passed with each call.
    if (kind === 'notifier') return 10_000;
    const key = `${kind}Ms` as const;
    return this.deadlines[key] ?? pluginDeadlineDefaults[key];
  }

  async call<T>(c: PluginCall, fn: (ctx: { signal: AbortSignal; logger: Logger }) => Promise<T>): Promise<T> {
    const name = `${c.kind} ${c.plugin}`;
    if (this.halt?.aborted) throw this.halt.reason;
    const logger = scopeLogger(this.logger, { plugin: c.plugin, phase: c.phase });
    const signals = [c.signal, this.halt].filter((s): s is AbortSignal => s !== undefined);
    const outer = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    const ms = c.deadlineMs ?? this.deadline(c.kind);
    this.logger.debug(`${name}: ${c.method} (${c.phase})`);
    try {
      return await withDeadline(
        (signal) =>
          c.retry
            ? withRetry(
                () => fn({ signal, logger }),
                c.retry,
                signal,
                (err, attempt) =>
                  this.logger.warn(`${name}: ${c.method} failed (attempt ${attempt}), retrying`, {
                    error: err instanceof Error ? err.message : String(err),
                  }),
              )
            : fn({ signal, logger }),
        {
          ms,
          what: `${name}: ${c.method}`,
          signal: outer,
          onAbandoned: ({ reason, afterMs }) => {
            this.logger.warn(
              `${name}: ${c.method} abandoned after ${afterMs} ms (${reason === 'deadline' ? `deadline of ${ms} ms passed` : 'cancelled'}); the engine no longer waits for it`,
            );
            this.onAbandoned({
              kind: c.kind,
              plugin: c.plugin,
              method: c.method,
              phase: c.phase,
              reason,
              afterMs,
            });
          },
        },
      );
    } catch (err) {
      // A halted run reports why it stopped, not what the abandoned call threw.
      if (this.halt?.aborted && this.halt.reason instanceof ReleaseError) throw this.halt.reason;
      throw c.untagged ? err : wrapPluginError(err, name, c.phase);
    }
  }
}
