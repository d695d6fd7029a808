import { AbortedError, ConfigInvalidError } from '../../errors.js';
import { type LatencySummary, summarizeLatency } from '../utils/stats.js';
import { buildRequest, WireConnection } from './wire.js';

/**
 * Options of {@link loadTest}.
 *
 * @example
 * ```ts
 * const options: LoadTestOptions = { url: 'https://staging.codegraph.com/health', connections: 50, durationMs: 10_000, requests: 1e9 }
 * ```
 */
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

/**
 * What {@link loadTest} measured.
 *
 * @example
 * ```ts
 * const { rps, errors, latencyMs } = await loadTest({ url })
 * ```
 */
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
 * flight over keep-alive connections (a lean client, so the generator is not the bottleneck), measuring errors, throughput and latency.
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

  let request: Buffer;
  try {
    request = buildRequest(url, options.headers ?? {});
  } catch (err) {
    throw new ConfigInvalidError(`loadTest headers: ${(err as Error).message}`);
  }
  const target = { url, request, ca: options.ca, timeoutMs: timeout };
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let sent = 0;
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const deadline = options.durationMs === undefined ? Number.POSITIVE_INFINITY : started + options.durationMs;
  const more = () => sent < total && performance.now() < deadline && !options.signal?.aborted;

  const conns: WireConnection[] = [];
  await new Promise<void>((resolve) => {
    let open = Math.min(connections, total);
    const closeOne = (c: WireConnection) => {
      c.destroy();
      if (--open === 0) resolve();
    };
    options.signal?.addEventListener('abort', () => resolve(), { once: true });
    for (let i = 0; i < open; i++) {
      const conn: WireConnection = new WireConnection(target, (status, ms, err) => {
        latencies.push(ms);
        if (err) {
          errors++;
          statuses.network = (statuses.network ?? 0) + 1;
          firstError ??= err.message;
        } else {
          const key = String(status);
          statuses[key] = (statuses[key] ?? 0) + 1;
          if (status >= 400) errors++;
        }
        if (!more()) return closeOne(conn);
        sent++;
        // After a network error, wait a little before reconnecting so a dead server is not hammered.
        if (err) setTimeout(() => (options.signal?.aborted ? closeOne(conn) : conn.send()), 10);
        else conn.send();
      });
      conns.push(conn);
      sent++;
      conn.send();
    }
  });
  for (const c of conns) c.destroy();
  const done = latencies.length;
  if (options.signal?.aborted)
    throw new AbortedError('load test was cancelled', { cause: options.signal.reason });
  const durationMs = performance.now() - started;
  return {
    requests: done,
    errors,
    statuses,
    durationMs: Math.round(durationMs),
    rps: Math.round((done / durationMs) * 1000 * 10) / 10,
    latencyMs: summarizeLatency(latencies),
    ...(firstError !== undefined ? { firstError } : {}),
  };
}
