import { sleep } from './http.js';

/**
 * One destination's delivery line: tasks run one at a time, in order, and two requests to the
 * destination are at least `minIntervalMs` apart (measured from the end of one request to the start of
 * the next, so the destination sees the spacing whatever the network adds). A task whose signal aborts
 * while it waits leaves the line at once.
 */
export interface DeliveryQueue {
  run<T>(task: () => Promise<T>, signal: AbortSignal): Promise<T>;
  /** Resolves before each request when the pace allows it. */
  pace(signal: AbortSignal): Promise<void>;
  /** Records the end of a request. */
  settled(): void;
  /** Resolves when every queued task has finished. */
  idle(): Promise<void>;
}

export function deliveryQueue(minIntervalMs: number): DeliveryQueue {
  let tail: Promise<void> = Promise.resolve();
  let lastEnd = Number.NEGATIVE_INFINITY;
  return {
    run(task, signal) {
      const turn = tail;
      let release!: () => void;
      const done = new Promise<void>((resolve) => {
        release = resolve;
      });
      // The next task waits for this one's turn and its end, even when this one gave up waiting.
      tail = turn.then(() => done);
      return (async () => {
        try {
          await abortable(turn, signal);
          signal.throwIfAborted();
          return await task();
        } finally {
          turn.then(release, release);
        }
      })();
    },
    async pace(signal) {
      for (;;) {
        const wait = lastEnd + minIntervalMs - performance.now();
        if (wait <= 0) return;
        await sleep(Math.ceil(wait), signal);
      }
    },
    settled() {
      lastEnd = performance.now();
    },
    idle: () => tail,
  };
}

function abortable(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
    );
  });
}

/** Remembers keys for a window: `seen(key)` is true for a repeat within `windowMs` of the first. */
export interface DedupWindow {
  seen(key: string): boolean;
  forget(key: string): void;
}

export function dedupWindow(windowMs: number): DedupWindow {
  const until = new Map<string, number>();
  return {
    seen(key) {
      const now = performance.now();
      for (const [k, end] of until) if (end <= now) until.delete(k);
      if (windowMs <= 0) return false;
      if (until.has(key)) return true;
      until.set(key, now + windowMs);
      return false;
    },
    forget(key) {
      until.delete(key);
    },
  };
}
