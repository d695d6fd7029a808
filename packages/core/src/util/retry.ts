import pRetry from 'p-retry';
import { isRetryable } from '../errors.js';

/** How the engine retries plugin calls that are safe to repeat. */
export interface RetryOptions {
  /** Attempts after the first. @default 2 */
  retries?: number;
  /** First back-off in milliseconds. @default 200 */
  minTimeoutMs?: number;
  /** Longest back-off in milliseconds. @default 2000 */
  maxTimeoutMs?: number;
}

export const retryDefaults: Required<RetryOptions> = { retries: 2, minTimeoutMs: 200, maxTimeoutMs: 2000 };

/** Runs `fn`, retrying only errors classified retryable (see `isRetryable`). */
export function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
  signal?: AbortSignal,
  onRetry?: (error: unknown, attempt: number) => void,
): Promise<T> {
  const o = { ...retryDefaults, ...options };
  return pRetry(fn, {
    retries: o.retries,
    minTimeout: o.minTimeoutMs,
    maxTimeout: o.maxTimeoutMs,
    randomize: true,
    ...(signal ? { signal } : {}),
    shouldRetry: ({ error }) => isRetryable(error),
    onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
      if (retriesLeft > 0 && isRetryable(error)) onRetry?.(error, attemptNumber);
    },
  });
}
