import { ConfigInvalidError } from '../../errors.js';
import type { PrometheusMetric } from './index.js';
import { parseDuration } from './template.js';

/**
 * Options of {@link codegraphSlo}; the defaults are the seeds' performance targets and alert rules.
 *
 * @example
 * ```ts
 * codegraphSlo({ selector: 'job="codegraph-api",pool="{{pool}}"', window: '5m', minThroughputRps: 500 })
 * ```
 */
export interface CodegraphSloOptions {
  /**
   * Label matchers that select the pool under test, inside `{...}`; the scrape config must attach them
   * to each pool's targets. @default 'pool="{{pool}}"'
   */
  selector?: string;
  /** The `rate()` window, a PromQL duration. @default '1m' */
  window?: string;
  /** Highest P95 latency in milliseconds (release guide: "Sub-50ms P95"). @default 50 */
  maxP95LatencyMs?: number;
  /** Lowest throughput in requests per second (release guide: ">10,000 QPS"). @default 10000 */
  minThroughputRps?: number;
  /** Lowest cache hit ratio (alert `LowCacheHitRate`: `cache_hit_ratio < 0.92`). @default 0.92 */
  minCacheHitRatio?: number;
  /** Highest resident memory in bytes (release guide: "<500MB footprint"). @default 524288000 */
  maxMemoryBytes?: number;
  /** Highest share of 5xx answers (manual's `CodeGraphHighErrorRate`: `> 0.05`). @default 0.05 */
  maxErrorRate?: number;
  /** The status-code label of `http_requests_total`. @default 'code' */
  statusLabel?: string;
  /**
   * Label matchers that select the whole service (every pool), for the offered load the throughput
   * floor is capped by. @default '' (every series of `http_requests_total`)
   */
  serviceSelector?: string;
}

/**
 * The defaults {@link CodegraphSloOptions} documents.
 *
 * @example
 * ```ts
 * console.log(`P95 must stay under ${codegraphSloDefaults.maxP95LatencyMs} ms`)
 * ```
 */
export const codegraphSloDefaults = Object.freeze({
  selector: 'pool="{{pool}}"',
  window: '1m',
  maxP95LatencyMs: 50,
  minThroughputRps: 10_000,
  minCacheHitRatio: 0.92,
  maxMemoryBytes: 500 * 1024 * 1024,
  maxErrorRate: 0.05,
  statusLabel: 'code',
  serviceSelector: '',
});

/**
 * CodeGraph's service-level objectives from the seeds as ready Prometheus metrics, per pool:
 * `p95_latency_ms` (`histogram_quantile(0.95, ...http_request_duration_seconds_bucket...)`),
 * `throughput_rps` (`rate(http_requests_total)`), `cache_hit_ratio`, `memory_bytes`
 * (`process_resident_memory_bytes`) and `error_rate` (5xx share; no 5xx at all counts as 0, no traffic
 * at all stays empty and so inconclusive).
 *
 * Sample size and traffic share:
 * - `error_rate` is judged by a sequential test on the requests behind it (α 0.01): a 5 % step with 20
 *   requests and one 5xx is not a failure; a true rate past the limit is, once the requests say so.
 * - `p95_latency_ms` fails only over at least 100 requests in the window (fewer: inconclusive).
 * - `throughput_rps` is a whole-service target (the seeds' 10,000 QPS): it is **scaled by the pool's
 *   traffic share** (500 rps at a 5 % canary) and **capped at 80 % of the pool's share of the load the
 *   whole service is offered** (`serviceSelector`), so a version that serves everything it is sent is
 *   never failed for load that does not exist, e.g. in the verification after an undo.
 *
 * @example
 * ```ts
 * prometheusAnalysis({ url, metrics: codegraphSlo({ minThroughputRps: 100, window: '2m' }) })
 * ```
 */
export function codegraphSlo(options: CodegraphSloOptions = {}): PrometheusMetric[] {
  const o = {
    ...codegraphSloDefaults,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  };
  if (Number.isNaN(parseDuration(o.window))) {
    throw new ConfigInvalidError(
      `codegraphSlo: window must be a PromQL duration like 1m, got ${JSON.stringify(o.window)}`,
    );
  }
  if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(o.statusLabel))
    throw new ConfigInvalidError('codegraphSlo: statusLabel must be a label name');
  const sel = o.selector;
  const w = o.window;
  const and = sel ? `${sel},` : '';
  const requests = `sum(increase(http_requests_total{${sel}}[${w}]))`;
  return [
    {
      name: 'p95_latency_ms',
      query: `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{${sel}}[${w}]))) * 1000`,
      threshold: { max: o.maxP95LatencyMs },
      unit: ' ms',
      samples: `sum(increase(http_request_duration_seconds_count{${sel}}[${w}]))`,
    },
    {
      name: 'throughput_rps',
      query: `sum(rate(http_requests_total{${sel}}[${w}]))`,
      threshold: { min: o.minThroughputRps },
      unit: ' rps',
      perPoolShare: true,
      offered: `sum(rate(http_requests_total{${o.serviceSelector}}[${w}]))`,
    },
    {
      name: 'cache_hit_ratio',
      query: `min(cache_hit_ratio{${sel}})`,
      threshold: { min: o.minCacheHitRatio },
    },
    {
      name: 'memory_bytes',
      query: `max(process_resident_memory_bytes{${sel}})`,
      threshold: { max: o.maxMemoryBytes },
      unit: ' B',
    },
    {
      name: 'error_rate',
      query:
        `(sum(rate(http_requests_total{${and}${o.statusLabel}=~"5.."}[${w}])) or vector(0))` +
        ` / sum(rate(http_requests_total{${sel}}[${w}]))`,
      threshold: { max: o.maxErrorRate },
      samples: requests,
      rate: true,
    },
  ];
}
