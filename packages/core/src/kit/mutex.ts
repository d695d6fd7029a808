/** Runs async work one call at a time, in call order. */
export interface Mutex {
  /** Runs `fn` when every earlier call has settled; a failure does not block the next call. */
  run<T>(fn: () => Promise<T> | T): Promise<T>;
}

/**
 * A per-instance mutex: a plugin instance that rewrites one config file or state file serialises its
 * writers with it.
 *
 * @example
 * ```ts
 * const mutex = createMutex()
 * await mutex.run(() => writeConfig(next))
 * ```
 */
export function createMutex(): Mutex {
  let tail: Promise<unknown> = Promise.resolve();
  return {
    run<T>(fn: () => Promise<T> | T): Promise<T> {
      const next = tail.then(fn, fn);
      tail = next.catch(() => undefined);
      return next;
    },
  };
}
