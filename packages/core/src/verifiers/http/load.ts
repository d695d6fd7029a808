import { Pool } from 'undici';
import { AbortedError, ConfigInvalidError } from '../../errors.js';
import { type LatencySummary, summarizeLatency } from '../utils/stats.js';

/** Options of {@link loadTest}. */
export interface LoadTestOptions {
  /** Absolute URL to request (`GET`). */
  url: string;
  /** Requests in flight at once, each on its own keep-alive connection. @default 10 */
  connections?: number;
  /** Requests to send in total. @default 200 */
  requests?: number;
  /** Stop sending after this many milliseconds even if `requests` are not all sent. @default undefined (no limit) */
  durationMs?: number;
  /** Request headers, e.g. `authorization`. @default {} */
  headers?: Record<string, string>;
  /** Milliseconds one request may take before it counts as an error. @default 10000 */
  requestTimeoutMs?: number;
  /** Extra CA certificates (PEM) to trust for `https:`. @default undefined */
  ca?: string | Buffer | undefined;
  /** Cancels the run; the promise rejects with `AbortedError`. */
  signal?: AbortSignal | undefined;
}

/** What {@link loadTest} measured. */
export interface LoadTestResult {
  /** Requests completed (answered or failed). */
  requests: number;
  /** Requests that failed: a network error, a timeout, or a status >= 400. */
  errors: number;
  /** Count of answers per status code; `network` counts requests without an answer. */
  statuses: Record<string, number>;
  /** Wall-clock duration of the run. */
  durationMs: number;
  /** Completed requests per second. */
  rps: number;
  /** Latency percentiles of every completed request, in milliseconds. */
  latencyMs: LatencySummary;
  /** The first network error's message, if any. */
  firstError?: string;
}

/**
 * The validation suite's concurrent-load step: `requests` GETs against one URL with `connections` in
 * flight over keep-alive connections (undici `Pool`), measuring errors, throughput and latency.
 *
 * @example
 * ```ts
 * const r = await loadTest({ url: 'http://127.0.0.1:8000/health', connections: 50, requests: 5000 })
 * console.log(r.rps, r.latencyMs.p99, r.errors)
 * ```
 */
export async function loadTest(options: LoadTestOptions): Promise<LoadTestResult> {
  const connections = options.connections ?? 10;
  const total = options.requests ?? 200;
  const timeout = options.requestTimeoutMs ?? 10_000;
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new ConfigInvalidError(`loadTest url must be an absolute URL, got ${JSON.stringify(options.url)}`);
  }
  if (!Number.isInteger(connections) || connections < 1)
    throw new ConfigInvalidError('loadTest connections must be an integer >= 1');
  if (!Number.isInteger(total) || total < 1)
    throw new ConfigInvalidError('loadTest requests must be an integer >= 1');
  if (options.signal?.aborted)
    throw new AbortedError('load test was cancelled', { cause: options.signal.reason });

  const pool = new Pool(url.origin, {
    connections,
    pipelining: 1,
    headersTimeout: timeout,
    bodyTimeout: timeout,
    ...(options.ca ? { connect: { ca: options.ca } } : {}),
  });
  const path = `${url.pathname}${url.search}`;
  const headers = options.headers ?? {};
  const latencies = new Float64Array(total);
  const statuses: Record<string, number> = {};
  let sent = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const deadline = options.durationMs === undefined ? Number.POSITIVE_INFINITY : started + options.durationMs;

  const worker = async () => {
    while (sent < total && performance.now() < deadline && !options.signal?.aborted) {
      sent++;
      const t0 = performance.now();
      try {
        const res = await pool.request({ path, method: 'GET', headers, signal: options.signal });
        await res.body.dump();
        const key = String(res.statusCode);
        statuses[key] = (statuses[key] ?? 0) + 1;
        if (res.statusCode >= 400) errors++;
      } catch (err) {
        if (options.signal?.aborted) break;
        errors++;
        statuses.network = (statuses.network ?? 0) + 1;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
      latencies[done++] = performance.now() - t0;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(connections, total) }, worker));
  } finally {
    await pool.destroy();
  }
  if (options.signal?.aborted)
    throw new AbortedError('load test was cancelled', { cause: options.signal.reason });
  const durationMs = performance.now() - started;
  return {
    requests: done,
    errors,
    statuses,
    durationMs: Math.round(durationMs),
    rps: Math.round((done / durationMs) * 1000 * 10) / 10,
    latencyMs: summarizeLatency(latencies.subarray(0, done)),
    ...(firstError !== undefined ? { firstError } : {}),
  };
}
