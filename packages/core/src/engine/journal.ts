import { ReleaseError, type SerializedError, serializeError } from '../errors.js';
import type { JournalEntry, RunHeader, Store } from '../store/types.js';
import type { Redactor } from '../util/redact.js';

/** An error recorded in the journal, thrown again when a run is replayed. */
export class ReplayedError extends ReleaseError {
  static override readonly code = 'CG_REPLAYED';
  constructor(readonly recorded: SerializedError) {
    super(recorded.message, { details: { recorded } });
    Object.defineProperty(this, 'code', { value: recorded.code });
    if (recorded.plugin) Object.defineProperty(this, 'plugin', { value: recorded.plugin });
    if (recorded.phase) Object.defineProperty(this, 'phase', { value: recorded.phase });
  }
}

type Recorded = { status: 'finished'; result: unknown } | { status: 'failed'; error: SerializedError };

/**
 * A run's durable journal. `step(key, fn)` runs `fn` once: it is journaled before and after it runs;
 * when a run is replayed, a finished step returns its recorded result and a failed one throws its
 * recorded error, so the run's code takes the same path again up to the first unfinished step.
 */
export class Journal {
  readonly #recorded = new Map<string, Recorded>();
  readonly #started = new Map<string, unknown>();
  #finished = false;

  constructor(
    readonly header: RunHeader,
    private readonly store: Store,
    private readonly redactor: Redactor,
    entries: readonly JournalEntry[] = [],
  ) {
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

  async step<T>(key: string, fn: () => Promise<T>, input?: unknown): Promise<T> {
    const done = this.#recorded.get(key);
    if (done?.status === 'finished') return done.result as T;
    if (done?.status === 'failed') throw new ReplayedError(done.error);
    const safeInput = input === undefined ? undefined : this.redactor.value(input);
    await this.store.append(this.runId, {
      type: 'step-started',
      key,
      ...(safeInput !== undefined ? { input: safeInput } : {}),
    });
    this.#started.set(key, safeInput);
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      const error = this.redactor.value(serializeError(err));
      await this.store.append(this.runId, { type: 'step-failed', key, error });
      this.#recorded.set(key, { status: 'failed', error });
      throw err;
    }
    const safe = this.redactor.value(result ?? null);
    await this.store.append(this.runId, { type: 'step-finished', key, result: safe });
    this.#recorded.set(key, { status: 'finished', result: safe });
    return result;
  }

  /** A finished run replays without side effects: nothing is appended, no event is emitted. */
  get replayOnly(): boolean {
    return this.#finished;
  }

  async note(message: string, data?: unknown): Promise<void> {
    await this.store.append(this.runId, {
      type: 'note',
      message: this.redactor.string(message),
      ...(data !== undefined ? { data: this.redactor.value(data) } : {}),
    });
  }

  async finish(entry: {
    status: 'succeeded' | 'rolled-back' | 'failed' | 'superseded';
    serving?: string;
    reason?: string;
  }) {
    if (this.#finished) return;
    await this.store.append(this.runId, {
      type: 'finished',
      status: entry.status,
      ...(entry.serving ? { serving: entry.serving } : {}),
      ...(entry.reason ? { reason: this.redactor.string(entry.reason) } : {}),
    });
    this.#finished = true;
  }
}
