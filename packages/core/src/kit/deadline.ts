import { AbortedError, TimeoutError } from '../errors.js';

/** Options of {@link withDeadline}. */
export interface DeadlineOptions {
  /** The longest the call may take, in milliseconds. */
  ms: number;
  /** What is called, for the error message (`notifier slack: notify`). */
  what: string;
  /** The caller's signal: aborting it stops waiting at once, like the deadline. */
  signal?: AbortSignal | undefined;
  /** Called once when the call is left behind (deadline passed or caller aborted) while it still runs. */
  onAbandoned?:
    | ((info: { what: string; reason: 'deadline' | 'aborted'; afterMs: number }) => void)
    | undefined;
}

/**
 * Runs `fn` with a signal that aborts at the deadline, and stops waiting for it at the deadline
 * whether or not `fn` honours the signal: a plugin that hangs cannot stretch its caller's bounds.
 * The late result of an abandoned call is ignored (and a late rejection swallowed).
 *
 * @example
 * ```ts
 * const verdict = await withDeadline((signal) => verifier.verify(input, { signal }), {
 *   ms: 30_000,
 *   what: 'verifier http: verify',
 * })
 * ```
 */
export function withDeadline<T>(
  fn: (signal: AbortSignal) => Promise<T> | T,
  options: DeadlineOptions,
): Promise<T> {
  const { ms, what, signal: outer } = options;
  const inner = new AbortController();
  const started = performance.now();
  if (outer?.aborted) {
    return Promise.reject(
      outer.reason instanceof Error
        ? outer.reason
        : new AbortedError(`${what} was cancelled`, { cause: outer.reason }),
    );
  }
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = () => {
      settled = true;
      clearTimeout(timer);
      outer?.removeEventListener('abort', onAbort);
    };
    const leave = (reason: 'deadline' | 'aborted', error: Error) => {
      if (settled) return;
      finish();
      inner.abort(error);
      options.onAbandoned?.({ what, reason, afterMs: Math.round(performance.now() - started) });
      reject(error);
    };
    const onAbort = () =>
      leave(
        'aborted',
        outer?.reason instanceof Error
          ? outer.reason
          : new AbortedError(`${what} was cancelled`, { cause: outer?.reason }),
      );
    const timer = setTimeout(
      () => leave('deadline', new TimeoutError(`${what} did not finish within ${ms} ms`)),
      ms,
    );
    outer?.addEventListener('abort', onAbort, { once: true });
    let pending: Promise<T>;
    try {
      pending = Promise.resolve(fn(inner.signal));
    } catch (err) {
      finish();
      reject(err);
      return;
    }
    pending.then(
      (value) => {
        if (settled) return;
        finish();
        resolve(value);
      },
      (err: unknown) => {
        if (settled) return;
        finish();
        reject(err);
      },
    );
  });
}
