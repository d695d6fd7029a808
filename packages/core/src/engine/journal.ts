import {
  isErrorCode,
  LockLostError,
  ReleaseError,
  type SerializedError,
  StoreError,
  StoreUnavailableError,
  serializeError,
} from '../errors.js';
import type {
  Fence,
  HistoryEntry,
  JournalEntry,
  JournalEntryInput,
  RunHeader,
  Store,
} from '../store/types.js';
import type { Redactor } from '../util/redact.js';

/**
 * An error recorded in the journal, thrown again when a run is replayed: its code, plugin and phase as
 * recorded (a code that is not one of the SDK's, read back from a journal, becomes `CG_PLUGIN_FAILED`).
 */
export function replayedError(recorded: SerializedError): ReleaseError {
  const err = new ReleaseError(String(recorded.message), {
    details: { recorded },
    ...(typeof recorded.plugin === 'string' ? { plugin: recorded.plugin } : {}),
    ...(typeof recorded.phase === 'string' ? { phase: recorded.phase } : {}),
    ...(typeof recorded.retryable === 'boolean' ? { retryable: recorded.retryable } : {}),
  });
  Object.defineProperty(err, 'code', {
    value: isErrorCode(recorded.code) ? recorded.code : 'CG_PLUGIN_FAILED',
  });
  if (typeof recorded.name === 'string') err.name = recorded.name;
  return err;
}

/**
 * Stops a run from acting once it can no longer journal what it does: its lease is lost (`lock.lost`
 * fired, or the store refused a fenced write with `CG_LOCK_LOST`), or a journal write failed (the store
 * is unavailable, the disk is full). After that no step starts and no plugin is called: the target
 * stays as the journal last recorded it, and `resume` (by this process or another) finishes the run.
 */
export class RunGuard {
  readonly #halt = new AbortController();
  constructor(readonly fence: Fence | undefined) {}

  /** Aborted, with the typed reason, when the run must stop. */
  get signal(): AbortSignal {
    return this.#halt.signal;
  }

  get stopped(): boolean {
    return this.#halt.signal.aborted;
  }

  /** Throws the reason the run stopped, if it did. */
  check(): void {
    if (this.#halt.signal.aborted) throw this.#halt.signal.reason;
  }

  /** Stops the run (the first reason wins). */
  stop(reason: ReleaseError): void {
    if (!this.#halt.signal.aborted) this.#halt.abort(reason);
  }

  /** Runs a store call; a failed write stops the run with a typed error, which is thrown. */
  async write<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.check();
    try {
      return await fn();
    } catch (err) {
      this.stop(storeFailure(err, what));
      throw this.#halt.signal.reason;
    }
  }
}

/** The typed error a failed journal write stops a run with. */
function storeFailure(err: unknown, what: string): ReleaseError {
  if (err instanceof LockLostError || err instanceof StoreUnavailableError) return err;
  if (err instanceof ReleaseError && (err.code === 'CG_LOCK_LOST' || err.code === 'CG_STORE_UNAVAILABLE'))
    return err;
  const message = err instanceof Error ? err.message : String(err);
  return new StoreError(
    `could not journal ${what} (${message}); the run stopped without acting further: resume it once the store is writable`,
    { cause: err },
  );
}

type Recorded = { status: 'finished'; result: unknown } | { status: 'failed'; error: SerializedError };

/**
 * A run's durable journal. `step(key, fn)` runs `fn` once: it is journaled before and after it runs;
 * when a run is replayed, a finished step returns its recorded result and a failed one throws its
 * recorded error, so the run's code takes the same path again up to the first unfinished step.
 * Every write carries the run's fence (its lease token); once a write fails, the run's guard stops it.
 */
export class Journal {
  readonly #recorded = new Map<string, Recorded>();
  readonly #started = new Map<string, unknown>();
  #finished = false;
  readonly guard: RunGuard;

  constructor(
    readonly header: RunHeader,
    private readonly store: Store,
    private readonly redactor: Redactor,
    entries: readonly JournalEntry[] = [],
    guard?: RunGuard,
  ) {
    this.guard = guard ?? new RunGuard(undefined);
    for (const e of entries) {
      if (e.type === 'step-started') this.#started.set(e.key, e.input);
      else if (e.type === 'step-finished')
        this.#recorded.set(e.key, { status: 'finished', result: e.result });
      else if (e.type === 'step-failed') this.#recorded.set(e.key, { status: 'failed', error: e.error });
      else if (e.type === 'finished') this.#finished = true;
    }
  }

  get runId(): string {
    return this.header.runId;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Whether this step ran to an end before (the run is being replayed past it). */
  has(key: string): boolean {
    return this.#recorded.has(key);
  }

  /** The input a started step was journaled with, for determinism checks on replay. */
  startedWith(key: string): unknown {
    return this.#started.get(key);
  }

  #append(entry: JournalEntryInput, what: string): Promise<JournalEntry> {
    const fence = this.guard.fence;
    return this.guard.write(what, () =>
      fence ? this.store.append(this.runId, entry, fence) : this.store.append(this.runId, entry),
    );
  }

  async step<T>(key: string, fn: () => Promise<T>, input?: unknown): Promise<T> {
    const done = this.#recorded.get(key);
    if (done?.status === 'finished') return done.result as T;
    if (done?.status === 'failed') throw replayedError(done.error);
    // A run that lost its lease or its store starts nothing more: not even a replayed step's successor.
    this.guard.check();
    const safeInput = input === undefined ? undefined : this.redactor.value(input);
    await this.#append(
      { type: 'step-started', key, ...(safeInput !== undefined ? { input: safeInput } : {}) },
      `the start of step ${key}`,
    );
    this.#started.set(key, safeInput);
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      // Stopped mid-step: the step stays started (resume runs it again), and the run reports why it stopped.
      this.guard.check();
      const error = this.redactor.value(serializeError(err));
      await this.#append({ type: 'step-failed', key, error }, `the failure of step ${key}`);
      this.#recorded.set(key, { status: 'failed', error });
      throw err;
    }
    const safe = this.redactor.value(result ?? null);
    await this.#append({ type: 'step-finished', key, result: safe }, `the end of step ${key}`);
    this.#recorded.set(key, { status: 'finished', result: safe });
    return result;
  }

  /** Writes the run's header: the journal's first line. */
  async open(): Promise<void> {
    await this.#append({ type: 'run', header: this.header }, 'the run header');
  }

  /** A finished run replays without side effects: nothing is appended, no event is emitted. */
  get replayOnly(): boolean {
    return this.#finished;
  }

  async note(message: string, data?: unknown): Promise<void> {
    await this.#append(
      {
        type: 'note',
        message: this.redactor.string(message),
        ...(data !== undefined ? { data: this.redactor.value(data) } : {}),
      },
      'a note',
    );
  }

  /** Records the run in the environment's history once (fenced like every journal write). */
  async recordHistory(entry: HistoryEntry): Promise<void> {
    const env = this.header.environment;
    const fence = this.guard.fence;
    await this.guard.write('the history entry', async () => {
      // Idempotent: a run killed between writing its history and journaling that must not appear twice.
      const known = await this.store.history(env);
      if (known.some((k) => k.runId === entry.runId)) return;
      await (fence ? this.store.recordHistory(env, entry, fence) : this.store.recordHistory(env, entry));
    });
  }

  async finish(entry: {
    status: 'succeeded' | 'rolled-back' | 'failed' | 'superseded';
    serving?: string;
    reason?: string;
  }) {
    if (this.#finished) return;
    await this.#append(
      {
        type: 'finished',
        status: entry.status,
        ...(entry.serving ? { serving: entry.serving } : {}),
        ...(entry.reason ? { reason: this.redactor.string(entry.reason) } : {}),
      },
      'the end of the run',
    );
    this.#finished = true;
  }
}
