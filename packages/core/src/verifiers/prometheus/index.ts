import type { Check, Verifier, VerifierResult, VerifyContext } from '../../analysis/types.js';
import { ConfigInvalidError, VerifierError } from '../../errors.js';
import type { PoolState } from '../../target/types.js';
import { redactor } from '../utils/redact.js';
import { resultOf } from '../utils/verdict.js';
import { type PromQuery, queryPrometheus, type Series } from './client.js';
import { thresholdFor, weigh } from './evidence.js';
import type { MetricThreshold, PrometheusMetric } from './metric.js';

export type { MetricThreshold, PrometheusMetric } from './metric.js';

import { checkTemplate, contextPlaceholders, fillTemplate } from './template.js';

/**
 * Options of {@link prometheusAnalysis}.
 *
 * Policies (none of these is ever a pass):
 * - an empty result (no series matched) is `inconclusive`;
 * - a NaN value (e.g. a quantile or ratio over no traffic) is `inconclusive`;
 * - a value that is not a number as Prometheus writes one (an empty string, blanks, `0x0`, a JSON
 *   number instead of a string) is `inconclusive`, like NaN;
 * - a series whose newest point has no valid timestamp (not a finite JSON number), or one older (or
 *   further in the future) than `maxStalenessMs`, is `inconclusive` (stale); for instant queries
 *   Prometheus also drops a series whose target is gone (so it turns into an empty result);
 * - Prometheus unreachable, timing out or answering 5xx throws a retryable `VerifierError` (the gate
 *   counts an `error` measurement and applies `consecutiveErrorLimit`);
 * - a query Prometheus rejects (`bad_data`) throws a non-retryable `VerifierError` (the gate ends `error`).
 *
 * @example
 * ```ts
 * prometheusAnalysis({ url: 'http://127.0.0.1:9090', metrics: codegraphSlo(), vars: { job: 'codegraph-api' }, timeoutMs: 5_000 })
 * ```
 */
export interface PrometheusAnalysisOptions {
  /** Prometheus base URL, e.g. `http://127.0.0.1:9090`. */
  url: string;
  metrics: PrometheusMetric[];
  /** The verifier's name. @default 'prometheus' */
  name?: string;
  /** Milliseconds one query may take. @default 10000 */
  timeoutMs?: number;
  /** Extra request headers (e.g. `authorization` for a protected Prometheus); values never logged. @default {} */
  headers?: Record<string, string>;
  /** Extra placeholder values, e.g. `{ job: 'codegraph-api' }` for `{{job}}`. @default {} */
  vars?: Record<string, string>;
  /** A series' newest point may be at most this old (instant and range queries). @default 60000 */
  maxStalenessMs?: number;
}

/**
 * The defaults {@link PrometheusAnalysisOptions} documents.
 *
 * @example
 * ```ts
 * const staleAfter = options.maxStalenessMs ?? prometheusDefaults.maxStalenessMs
 * ```
 */
export const prometheusDefaults = Object.freeze({
  name: 'prometheus',
  timeoutMs: 10_000,
  maxStalenessMs: 60_000,
});

/**
 * Judges the version under test on PromQL metrics through Prometheus's HTTP API (instant and range
 * queries), each query templated per pool so a canary is judged on its own traffic. Every check records
 * the resolved query and the observed value. Options and templates are validated when the verifier is
 * made; a malformed one throws `ConfigInvalidError` before any query.
 *
 * @example
 * ```ts
 * const slo = prometheusAnalysis({ url: 'http://prometheus:9090', metrics: codegraphSlo({ minThroughputRps: 50 }) })
 * await runGate('canary-20', [slo], ctx, { count: 10, intervalMs: 30_000, failureLimit: 1 })
 * ```
 */
export function prometheusAnalysis(options: PrometheusAnalysisOptions) {
  const o = validate(options);
  const redact = redactor(Object.values(o.headers));
  return {
    name: o.name,
    async verify(ctx: VerifyContext): Promise<VerifierResult> {
      const now = Date.now();
      const jobs = o.metrics.flatMap((m) => expand(m, ctx, o.vars));
      const checks = await Promise.all(
        jobs.map(async ({ metric, check, query, pool, extra }) => {
          const q: PromQuery = metric.range
            ? {
                kind: 'range',
                query,
                start: now - metric.range.windowMs,
                end: now,
                step: metric.range.stepMs ?? 1000,
              }
            : { kind: 'instant', query, time: now };
          const series = await queryPrometheus(o.url, q, {
            headers: o.headers,
            timeoutMs: o.timeoutMs,
            signal: ctx.signal,
            redact,
          });
          const instant = async (text: string | undefined) => {
            if (text === undefined) return undefined;
            const [first] = await queryPrometheus(
              o.url,
              { kind: 'instant', query: text, time: now },
              { headers: o.headers, timeoutMs: o.timeoutMs, signal: ctx.signal, redact },
            );
            return first?.points[first.points.length - 1]?.[1];
          };
          const [samples, offered] = await Promise.all([instant(extra.samples), instant(extra.offered)]);
          const { threshold, note } = thresholdFor(metric, pool?.weight, offered);
          const judged = judge({ ...metric, threshold }, check, query, series, now, o.maxStalenessMs);
          const weighed = weigh(judged, metric, { samples, offered });
          return {
            ...weighed,
            ...(pool ? { pool: pool.name } : {}),
            ...(note ? { reason: `${weighed.reason} (limit ${note})` } : {}),
          };
        }),
      );
      return resultOf(checks);
    },
  } satisfies Verifier;
}

type Resolved = Required<Omit<PrometheusAnalysisOptions, 'metrics'>> & {
  metrics: Array<PrometheusMetric & { uses: string[] }>;
};

function validate(options: PrometheusAnalysisOptions): Resolved {
  const bad = (why: string, field: string) =>
    new ConfigInvalidError(`prometheusAnalysis: ${why}`, { details: { field } });
  const o = { ...prometheusDefaults, headers: {}, vars: {}, ...options };
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw bad(`url must be an absolute http(s) URL, got ${JSON.stringify(o.url)}`, 'url');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad('url must be http: or https:', 'url');
  if (!Number.isFinite(o.timeoutMs) || o.timeoutMs <= 0)
    throw bad('timeoutMs must be a number > 0', 'timeoutMs');
  if (!Number.isFinite(o.maxStalenessMs) || o.maxStalenessMs <= 0)
    throw bad('maxStalenessMs must be a number > 0', 'maxStalenessMs');
  for (const k of Object.keys(o.vars)) {
    if ((contextPlaceholders as readonly string[]).includes(k))
      throw bad(`vars.${k} would hide the context's {{${k}}}`, 'vars');
  }
  if (!Array.isArray(o.metrics) || o.metrics.length === 0)
    throw bad('metrics must list at least one metric', 'metrics');
  const known = [...contextPlaceholders, ...Object.keys(o.vars)];
  const names = new Set<string>();
  const metrics = o.metrics.map((m) => {
    if (typeof m?.name !== 'string' || !/^[\w.:-]+$/.test(m.name))
      throw bad(`metric name ${JSON.stringify(m?.name)} is not a word`, 'metrics');
    if (names.has(m.name)) throw bad(`two metrics are named ${m.name}`, 'metrics');
    names.add(m.name);
    const t = m.threshold ?? {};
    const finite = (v: unknown) => v === undefined || (typeof v === 'number' && !Number.isNaN(v));
    if ((t.min === undefined && t.max === undefined) || !finite(t.min) || !finite(t.max)) {
      throw bad(
        `metric ${m.name}: threshold needs a numeric min and/or max, got ${JSON.stringify(m.threshold)}`,
        'threshold',
      );
    }
    if (t.min !== undefined && t.max !== undefined && t.min > t.max)
      throw bad(`metric ${m.name}: threshold min > max`, 'threshold');
    if (m.range) {
      const { windowMs, stepMs = 1000, reduce = 'worst' } = m.range;
      if (!(windowMs > 0) || !(stepMs > 0) || stepMs > windowMs)
        throw bad(`metric ${m.name}: range needs 0 < stepMs <= windowMs`, 'range');
      if (!['worst', 'last', 'avg'].includes(reduce))
        throw bad(`metric ${m.name}: range.reduce must be worst, last or avg`, 'range');
    }
    for (const extra of [m.samples, m.offered]) if (extra !== undefined) checkTemplate(m.name, extra, known);
    if (m.minSamples !== undefined && !(Number.isInteger(m.minSamples) && m.minSamples >= 1))
      throw bad(`metric ${m.name}: minSamples must be an integer >= 1`, 'minSamples');
    if (m.rate && (m.samples === undefined || m.threshold?.max === undefined))
      throw bad(`metric ${m.name}: rate needs a samples query and a max`, 'rate');
    return { ...m, uses: checkTemplate(m.name, m.query, known) };
  });
  return { ...o, url: url.href.replace(/\/$/, ''), metrics };
}

/** One query per pool under test when the template uses `{{pool}}`, else one. */
function expand(
  metric: Resolved['metrics'][number],
  ctx: VerifyContext,
  vars: Record<string, string>,
): Array<{
  metric: PrometheusMetric;
  check: string;
  query: string;
  pool: PoolState | undefined;
  extra: { samples?: string; offered?: string };
}> {
  const base = { ...vars, environment: ctx.environment, version: ctx.version };
  const fill = (values: Record<string, string>) => ({
    ...(metric.samples !== undefined ? { samples: fillTemplate(metric.samples, values) } : {}),
    ...(metric.offered !== undefined ? { offered: fillTemplate(metric.offered, values) } : {}),
  });
  if (!metric.uses.includes('pool')) {
    const values = { ...base, pool: ctx.pools[0]?.name ?? '' };
    return [
      {
        metric,
        check: metric.name,
        query: fillTemplate(metric.query, values),
        pool: ctx.pools[0],
        extra: fill(values),
      },
    ];
  }
  if (ctx.pools.length === 0) {
    throw new VerifierError(`metric ${metric.name} is templated per {{pool}} but no pool is under test`, {
      retryable: false,
    });
  }
  return ctx.pools.map((p) => {
    const values = { ...base, pool: p.name, version: p.version };
    return {
      metric,
      check: `${metric.name}[${p.name}]`,
      query: fillTemplate(metric.query, values),
      pool: p,
      extra: fill(values),
    };
  });
}

const labelsOf = (s: Series) =>
  `{${Object.entries(s.labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;

/** Judges every series against the threshold; the worst series decides. */
function judge(
  m: PrometheusMetric,
  name: string,
  query: string,
  series: Series[],
  now: number,
  maxStalenessMs: number,
): Check {
  const t = m.threshold;
  const unit = m.unit ?? '';
  const words = [
    t.min !== undefined ? `>= ${t.min}${unit}` : '',
    t.max !== undefined ? `<= ${t.max}${unit}` : '',
  ]
    .filter(Boolean)
    .join(' and ');
  const base = { name, query, threshold: words };
  if (series.length === 0) {
    return {
      ...base,
      verdict: 'inconclusive',
      observed: null,
      reason: 'empty result: no series matched (no traffic yet, wrong labels, or the target is gone)',
    };
  }
  const outside = (v: number) => (t.max !== undefined && v > t.max) || (t.min !== undefined && v < t.min);
  let fail: { v: number; s: Series } | undefined;
  let unknown: { why: string; s: Series } | undefined;
  let shown: number | undefined;
  for (const s of series) {
    const newest = s.points[s.points.length - 1]?.[0];
    // Instant results carry the evaluation time; a timestamp that is not a number, or is far from now
    // either way, is garbage or stale: never a pass.
    const age = newest === undefined || Number.isNaN(newest) ? Number.NaN : now - newest * 1000;
    if (!(Math.abs(age) <= maxStalenessMs)) {
      unknown ??= {
        why: Number.isNaN(age)
          ? 'stale: the newest sample has no valid timestamp'
          : `stale: newest sample is ${Math.round(age / 1000)} s ${age < 0 ? 'in the future' : 'old'} (> ${maxStalenessMs / 1000} s)`,
        s,
      };
      continue;
    }
    const values = s.points
      .filter((p) => !Number.isNaN(p[0]))
      .map((p) => p[1])
      .filter((v) => !Number.isNaN(v));
    if (values.length === 0) {
      unknown ??= {
        why: 'NaN: the expression has no defined value (no traffic in the window?) or the value is not a number',
        s,
      };
      continue;
    }
    const v = reduce(values, m.range?.reduce ?? 'worst', t);
    if (outside(v) && (!fail || distance(v, t) > distance(fail.v, t))) fail = { v, s };
    shown = shown === undefined || distance(v, t) > distance(shown, t) ? v : shown;
  }
  const n = series.length > 1 ? ` of ${series.length} series` : '';
  if (fail) {
    const side = t.max !== undefined && fail.v > t.max ? `above ${t.max}` : `below ${t.min}`;
    return {
      ...base,
      verdict: 'fail',
      observed: round(fail.v),
      reason: `${round(fail.v)}${unit} ${side}${unit} at ${labelsOf(fail.s)}${n}`,
    };
  }
  if (unknown)
    return {
      ...base,
      verdict: 'inconclusive',
      observed: null,
      reason: `${unknown.why} at ${labelsOf(unknown.s)}`,
    };
  return {
    ...base,
    verdict: 'pass',
    observed: round(shown!),
    reason: `${round(shown!)}${unit} within ${words}${n}`,
  };
}

function reduce(values: number[], how: 'worst' | 'last' | 'avg', t: MetricThreshold): number {
  if (how === 'last') return values[values.length - 1]!;
  if (how === 'avg') return values.reduce((a, b) => a + b, 0) / values.length;
  return values.reduce((w, v) => (distance(v, t) > distance(w, t) ? v : w));
}

/** How far a value leans towards breaking the threshold (bigger is worse). */
function distance(v: number, t: MetricThreshold): number {
  const up = t.max !== undefined ? v - t.max : Number.NEGATIVE_INFINITY;
  const down = t.min !== undefined ? t.min - v : Number.NEGATIVE_INFINITY;
  return Math.max(up, down);
}

/** Rounds for display; `+Inf`/`-Inf` stay readable in JSON (which has no infinities). */
const round = (v: number): number | string =>
  Number.isFinite(v) ? Math.round(v * 1e6) / 1e6 : v > 0 ? '+Inf' : '-Inf';
