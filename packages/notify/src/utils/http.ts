import {
  AbortedError,
  type Logger,
  NotifyFailedError,
  RateLimitedError,
  ReleaseError,
  TimeoutError,
} from '@codegraph/release-core';
import { sleep as kitSleep } from '@codegraph/release-core/kit';
import pRetry, { AbortError } from 'p-retry';
import { type Dispatcher, request } from 'undici';
import type { Redact } from './redact.js';
import { truncate } from './text.js';

/** How one destination delivers: timeouts, retries and pacing. Defaults live in `destination.ts`. */
export interface DeliveryPolicy {
  timeoutMs: number;
  retries: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  maxRetryAfterMs: number;
}

/** One HTTP POST. `headers` may be a function, called again before each attempt (fresh signatures). */
export interface PostRequest {
  url: URL;
  body: string;
  headers?: Record<string, string> | (() => Record<string, string>);
}

/** What the caller of {@link post} supplies about the destination. */
export interface PostContext {
  plugin: string;
  /** The destination without secrets, e.g. `https://hooks.slack.com/[redacted]`. */
  target: string;
  redact: Redact;
  policy: DeliveryPolicy;
  signal: AbortSignal;
  logger: Logger;
  dispatcher?: Dispatcher | undefined;
  /** Called before each attempt; resolves when the destination's pace allows a request. */
  pace?: (signal: AbortSignal) => Promise<void>;
  /** Called after each attempt, successful or not. */
  settled?: () => void;
  /** `performance.now()` by which delivery must be over; a longer Retry-After fails at once. */
  deadline?: number;
}

/** A delivered request's answer. */
export interface PostResult {
  status: number;
  body: string;
  attempts: number;
}

/**
 * POSTs JSON and retries what is safe to retry: network errors, timeouts, 5xx, and 429 after the
 * `Retry-After` the destination asked for. Other 4xx fail at once. Every error is a
 * {@link ReleaseError} whose message and cause hold no secret.
 */
export async function post(req: PostRequest, ctx: PostContext): Promise<PostResult> {
  const { policy, signal } = ctx;
  const started = performance.now();
  let attempts = 0;
  const attempt = async (): Promise<PostResult> => {
    attempts++;
    await ctx.pace?.(signal);
    try {
      const result = await once(req, ctx);
      return { ...result, attempts };
    } catch (err) {
      if (err instanceof ReleaseError && !err.retryable) throw new AbortError(err);
      throw err;
    } finally {
      ctx.settled?.();
    }
  };
  try {
    return await pRetry(attempt, {
      retries: policy.retries,
      // Backoff happens in onFailedAttempt so that a 429's Retry-After replaces it instead of adding to it.
      minTimeout: 0,
      signal,
      onFailedAttempt: async ({ error, retriesLeft }) => {
        if (retriesLeft <= 0 || signal.aborted) return;
        const wait = retryDelay(error, attempts, policy);
        if (ctx.deadline !== undefined && performance.now() + wait > ctx.deadline) {
          // Waiting would outlast the budget: report now rather than hold the caller until it runs out.
          throw new NotifyFailedError(
            `${error.message}; waiting ${wait} ms would exceed the delivery budget`,
            {
              plugin: ctx.plugin,
              retryable: false,
              cause: error,
              details: { attempts, retryInMs: wait },
            },
          );
        }
        ctx.logger.warn(
          `${ctx.plugin}: attempt ${attempts} to ${ctx.target} failed; retrying in ${wait} ms`,
          {
            error: ctx.redact(error.message),
          },
        );
        await sleep(wait, signal);
      },
    });
  } catch (err) {
    throw finalError(err, ctx, attempts, performance.now() - started);
  }
}

async function once(req: PostRequest, ctx: PostContext): Promise<{ status: number; body: string }> {
  const headers = typeof req.headers === 'function' ? req.headers() : (req.headers ?? {});
  let res: Dispatcher.ResponseData;
  try {
    res = await request(req.url, {
      method: 'POST',
      body: req.body,
      headers: { 'content-type': 'application/json', 'user-agent': 'codegraph-release-notify', ...headers },
      signal: ctx.signal,
      headersTimeout: ctx.policy.timeoutMs,
      bodyTimeout: ctx.policy.timeoutMs,
      ...(ctx.dispatcher ? { dispatcher: ctx.dispatcher } : {}),
    });
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    const code = (err as { code?: unknown }).code;
    const what = typeof code === 'string' ? code : err instanceof Error ? err.name : 'error';
    throw new NotifyFailedError(`${ctx.plugin}: could not reach ${ctx.target} (${what})`, {
      plugin: ctx.plugin,
      retryable: true,
      cause: sanitize(err, ctx.redact),
      details: { code: what },
    });
  }
  const body = await readText(res, ctx);
  const { statusCode: status } = res;
  if (status >= 200 && status < 300) return { status, body };
  const excerpt = ctx.redact(truncate(body.replace(/\s+/g, ' ').trim(), 200));
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(res.headers['retry-after'], body);
    throw new RateLimitedError(
      `${ctx.plugin}: ${ctx.target} answered 429 Too Many Requests${retryAfterMs === undefined ? '' : `; retry after ${retryAfterMs} ms`}`,
      { plugin: ctx.plugin, details: { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) } },
    );
  }
  const retryable = status >= 500;
  throw new NotifyFailedError(
    `${ctx.plugin}: ${ctx.target} answered ${status}${excerpt ? ` (${excerpt})` : ''}${retryable ? '' : '; not retried: fix the payload or the destination settings'}`,
    { plugin: ctx.plugin, retryable, details: { status, body: excerpt } },
  );
}

async function readText(res: Dispatcher.ResponseData, ctx: PostContext): Promise<string> {
  try {
    return await res.body.text();
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    throw new NotifyFailedError(`${ctx.plugin}: ${ctx.target} cut the response short`, {
      plugin: ctx.plugin,
      retryable: true,
      cause: sanitize(err, ctx.redact),
    });
  }
}

/** Retry-After in seconds or as an HTTP date; Discord also sends `retry_after` (seconds) in the body. */
export function parseRetryAfter(header: string | string[] | undefined, body = ''): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value !== undefined && value.trim() !== '') {
    const seconds = Number(value);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
    const date = Date.parse(value);
    if (Number.isFinite(date)) return Math.max(0, date - Date.now());
  }
  try {
    const parsed = JSON.parse(body) as { retry_after?: unknown };
    if (typeof parsed.retry_after === 'number' && parsed.retry_after >= 0) {
      return Math.ceil(parsed.retry_after * 1000);
    }
  } catch {
    // Not JSON: no hint.
  }
  return undefined;
}

function retryDelay(error: Error, attempt: number, policy: DeliveryPolicy): number {
  if (error instanceof RateLimitedError) {
    const asked = error.details?.['retryAfterMs'];
    if (typeof asked === 'number') return Math.min(asked, policy.maxRetryAfterMs);
  }
  return Math.min(policy.minBackoffMs * 2 ** (attempt - 1), policy.maxBackoffMs);
}

function finalError(err: unknown, ctx: PostContext, attempts: number, elapsedMs: number): ReleaseError {
  if (ctx.signal.aborted) {
    const reason: unknown = ctx.signal.reason;
    if (reason instanceof TimeoutError || (reason instanceof Error && reason.name === 'TimeoutError')) {
      return new NotifyFailedError(
        `${ctx.plugin}: gave up on ${ctx.target} after ${Math.round(elapsedMs)} ms (delivery budget spent, ${attempts} attempt(s))`,
        {
          plugin: ctx.plugin,
          retryable: false,
          cause: new TimeoutError('delivery budget spent', { plugin: ctx.plugin }),
          details: { attempts, elapsedMs: Math.round(elapsedMs) },
        },
      );
    }
    return new AbortedError(`${ctx.plugin}: delivery to ${ctx.target} was cancelled`, { plugin: ctx.plugin });
  }
  if (err instanceof NotifyFailedError && err.details?.['retryInMs'] !== undefined) return err;
  const last = err instanceof ReleaseError ? err : sanitize(err, ctx.redact);
  return new NotifyFailedError(
    `${ctx.plugin}: delivery to ${ctx.target} failed after ${attempts} attempt(s): ${last.message}`,
    {
      plugin: ctx.plugin,
      // Retries already happened here; the engine should report, not retry again.
      retryable: false,
      cause: last,
      details: { attempts, ...(err instanceof ReleaseError ? err.details : {}) },
    },
  );
}

/** A copy of a foreign error with secrets removed from its message and no cause chain or stack. */
export function sanitize(err: unknown, redact: Redact): ReleaseError {
  const message = redact(err instanceof Error ? err.message : String(err));
  const code = (err as { code?: unknown } | null)?.code;
  const copy = new NotifyFailedError(message, { details: typeof code === 'string' ? { code } : {} });
  copy.stack = `${copy.name}: ${message}`;
  return copy;
}

/** Core's abortable sleep, rejecting with the signal's own reason (a deadline's `TimeoutError` stays one). */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  kitSleep(ms, signal).catch((err: unknown) => {
    throw signal?.aborted ? signal.reason : err;
  });
