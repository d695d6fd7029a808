import { AbortedError } from '../errors.js';

/** What the engine keeps about one of its runs while it executes: how to abort it and its approvals. */
export interface ActiveRun {
  readonly runId: string;
  readonly abort: AbortController;
  /** Pauses waiting for an approval, oldest first. */
  approvals: Array<(full: boolean) => void>;
  /** Approvals given before a pause asked for one. */
  approved: number;
  /** `promote(id, { full: true })` was asked: every later pause passes at once. */
  full: boolean;
}

/**
 * The runs this engine is executing, and the operator's control of them: `promote` (approvals),
 * `abort`, and the emergency rollback's supersede. Control requests from other processes (the
 * store's `watchControl`, see `control.ts`) act through the same methods.
 */
export class RunRegistry {
  readonly #active = new Map<string, ActiveRun>();
  /** Runs of this engine still executing (releases and resumes), so an emergency rollback can wait for their undo. */
  readonly #inFlight = new Set<Promise<unknown>>();

  /** Keeps `p` in flight until it settles. */
  track<T>(p: Promise<T>): Promise<T> {
    this.#inFlight.add(p);
    return p.finally(() => this.#inFlight.delete(p));
  }

  /** The run's entry, created on first use. */
  enter(runId: string): ActiveRun {
    let run = this.#active.get(runId);
    if (!run) {
      run = { runId, abort: new AbortController(), approvals: [], approved: 0, full: false };
      this.#active.set(runId, run);
    }
    return run;
  }

  leave(runId: string): void {
    this.#active.delete(runId);
  }

  has(runId: string): boolean {
    return this.#active.has(runId);
  }

  /** Waits for an approval of `run` (or a full promotion); rejects when `signal` aborts. */
  waitForApproval(run: ActiveRun, signal: AbortSignal): Promise<{ full: boolean }> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      if (run.full) return resolve({ full: true });
      if (run.approved > 0) {
        run.approved--;
        return resolve({ full: false });
      }
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      run.approvals.push((full) => {
        signal.removeEventListener('abort', onAbort);
        resolve({ full });
      });
    });
  }

  /** Approves a pause of `runId` (of every run when absent). Returns whether a run was there. */
  promote(runId: string | undefined, options: { full?: boolean } = {}): boolean {
    let any = false;
    for (const [id, run] of this.#active) {
      if (runId && id !== runId) continue;
      any = true;
      if (options.full) run.full = true;
      const waiter = run.approvals.shift();
      if (waiter) waiter(run.full);
      else run.approved++;
    }
    return any;
  }

  /** Aborts `runId` (every run when absent): it undoes itself. Returns whether a run was there. */
  abort(runId: string | undefined, reason: string): boolean {
    let any = false;
    for (const [id, run] of this.#active) {
      if (runId && id !== runId) continue;
      any = true;
      run.abort.abort(new AbortedError(`run ${id} aborted by operator: ${reason}`));
    }
    return any;
  }

  /**
   * An emergency does not wait for a release of this engine to finish: every run is aborted (it undoes
   * itself, each target call bounded by the engine's deadline), then this resolves once they all ended.
   */
  async supersedeAll(why: string): Promise<void> {
    if (this.#inFlight.size === 0) return;
    for (const [id, run] of this.#active) run.abort.abort(new AbortedError(`run ${id} superseded by ${why}`));
    await Promise.allSettled([...this.#inFlight]);
  }
}
