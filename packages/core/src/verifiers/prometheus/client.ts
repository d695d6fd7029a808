import { request } from 'undici';
import { VerifierError } from '../../errors.js';

/** One series of a query result: its labels and its points (`[unix seconds, value]`, oldest first). */
export interface Series {
  labels: Record<string, string>;
  points: Array<[number, number]>;
}

/** A query to run: instant at `time`, or a range `start..end` every `step` (all in milliseconds). */
export type PromQuery =
  | { kind: 'instant'; query: string; time: number }
  | { kind: 'range'; query: string; start: number; end: number; step: number };

interface ApiResponse {
  status?: string;
  errorType?: string;
  error?: string;
  data?: { resultType?: string; result?: unknown };
}

/** A decimal float as Prometheus writes one: `1.5`, `-2e-3`, `.5`; nothing else (no `0x0`, no blanks). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Prometheus sample values are strings: `"1.5"`, `"NaN"`, `"+Inf"`, `"-Inf"`. Anything else (an empty
 * string, blanks, `0x0`, a number that is not a string) is garbage and reads as `NaN`, which a check
 * turns into `inconclusive`, never a pass (JavaScript's `Number('')` would be 0).
 */
export function sampleValue(text: unknown): number {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (typeof text !== 'string' || !DECIMAL.test(text)) return Number.NaN;
  return Number(text);
}

/**
 * A sample's timestamp: unix seconds as a JSON number (Prometheus's format), finite and positive.
 * Anything else (a string, `null`, `NaN`) reads as `NaN`, which the staleness check treats as stale.
 */
export function sampleTime(t: unknown): number {
  return typeof t === 'number' && Number.isFinite(t) && t > 0 ? t : Number.NaN;
}

/**
 * Runs one PromQL query through the HTTP API (`/api/v1/query` or `/api/v1/query_range`) and returns
 * the series. Failures are {@link VerifierError}s: unreachable, timed out or 5xx are retryable; a query
 * Prometheus rejects (`bad_data`, HTTP 400/422) is not.
 */
export async function queryPrometheus(
  base: string,
  q: PromQuery,
  options: {
    headers: Record<string, string>;
    timeoutMs: number;
    signal: AbortSignal | undefined;
    redact: (s: string) => string;
  },
): Promise<Series[]> {
  const form = new URLSearchParams({ query: q.query });
  if (q.kind === 'instant') form.set('time', (q.time / 1000).toFixed(3));
  else {
    form.set('start', (q.start / 1000).toFixed(3));
    form.set('end', (q.end / 1000).toFixed(3));
    form.set('step', `${q.step / 1000}`);
  }
  const endpoint = `${base}/api/v1/${q.kind === 'instant' ? 'query' : 'query_range'}`;
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const details = { query: q.query, endpoint: options.redact(endpoint) };
  let status: number;
  let text: string;
  try {
    const res = await request(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...options.headers },
      body: form.toString(),
      signal,
    });
    status = res.statusCode;
    text = await res.body.text();
  } catch (err) {
    if (options.signal?.aborted) throw err;
    const why = timeout.aborted
      ? `no answer within ${options.timeoutMs} ms`
      : err instanceof Error
        ? err.message
        : String(err);
    throw new VerifierError(`Prometheus at ${options.redact(base)} is unreachable: ${options.redact(why)}`, {
      retryable: true,
      details: { ...details, code: (err as { code?: string }).code ?? 'UNKNOWN' },
    });
  }
  let body: ApiResponse;
  try {
    body = JSON.parse(text) as ApiResponse;
  } catch {
    throw new VerifierError(`Prometheus answered ${status} with a body that is not JSON`, {
      retryable: status >= 500,
      details: { ...details, status },
    });
  }
  if (body.status !== 'success') {
    const rejected = status === 400 || status === 422 || body.errorType === 'bad_data';
    throw new VerifierError(
      rejected
        ? `Prometheus rejected the query (${body.errorType}): ${body.error}`
        : `Prometheus failed (${status} ${body.errorType ?? ''}): ${body.error ?? 'no error message'}`,
      { retryable: !rejected, details: { ...details, status, errorType: body.errorType } },
    );
  }
  return toSeries(body.data?.resultType, body.data?.result);
}

const garbage = (type: string) =>
  new VerifierError(`Prometheus returned a ${type} result that is not a list`, { retryable: true });

function toSeries(type: string | undefined, result: unknown): Series[] {
  const pt = (p: unknown): [number, number] => {
    const [t, v] = Array.isArray(p) ? p : [];
    return [sampleTime(t), sampleValue(v)];
  };
  switch (type) {
    case 'scalar':
      return [{ labels: {}, points: [pt(result)] }];
    case 'vector':
      if (!Array.isArray(result)) throw garbage(type);
      return (result as Array<{ metric?: Record<string, string>; value?: unknown }>).map((s) => ({
        labels: s.metric ?? {},
        points: [pt(s.value)],
      }));
    case 'matrix':
      if (!Array.isArray(result)) throw garbage(type);
      return (result as Array<{ metric?: Record<string, string>; values?: unknown[] }>).map((s) => ({
        labels: s.metric ?? {},
        points: (Array.isArray(s.values) ? s.values : []).map(pt),
      }));
    default:
      throw new VerifierError(
        `Prometheus returned a ${type ?? 'missing'} result; a metric query must give numbers`,
        {
          retryable: false,
        },
      );
  }
}
