import { AbortedError, TimeoutError } from '../errors.js';

export { sleep } from '../util/time.js';

/**
 * Runs `fn` with a signal that aborts when `parent` aborts or `timeoutMs` passes, and settles as soon
 * as either happens even when `fn` ignores its signal: an abort rejects with {@link AbortedError}, the
 * deadline with {@link TimeoutError}.
 */
export async function withDeadline<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  timeoutMs: number,
  parent: AbortSignal | undefined,
  what: string,
): Promise<T> {
  if (parent?.aborted) throw new AbortedError(`${what} was cancelled`, { cause: parent.reason });
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new TimeoutError(`${what} took longer than ${timeoutMs} ms`);
      controller.abort(err);
      reject(err);
    }, timeoutMs);
    onAbort = () => {
      const err = new AbortedError(`${what} was cancelled`, { cause: parent?.reason });
      controller.abort(err);
      reject(err);
    };
    parent?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([fn(controller.signal), stop]);
  } finally {
    clearTimeout(timer);
    if (onAbort) parent?.removeEventListener('abort', onAbort);
  }
}
