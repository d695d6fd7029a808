// The shape of one Prometheus metric and its threshold: shared by the verifier and its evidence rules.

/**
 * Bounds a metric must stay within (inclusive); at least one is required, `min <= max`.
 *
 * @example
 * ```ts
 * const cacheHits: MetricThreshold = { min: 0.92 }
 * ```
 */
export interface MetricThreshold {
  /** Lowest acceptable value (inclusive). @default undefined (no lower bound) */
  min?: number;
  /** Highest acceptable value (inclusive). @default undefined (no upper bound) */
  max?: number;
}

/**
 * One PromQL metric judged against a threshold.
 *
 * @example
 * ```ts
 * const p99: PrometheusMetric = {
 *   name: 'p99_latency_ms',
 *   query: 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{pool="{{pool}}"}[2m]))) * 1000',
 *   threshold: { max: 50 },
 *   range: { windowMs: 300_000, stepMs: 15_000 },
 * }
 * ```
 */
export interface PrometheusMetric {
  /** Check name, e.g. `p95_latency_ms`. With `{{pool}}` in the query the check is `name[pool]`. */
  name: string;
  /**
   * PromQL with placeholders filled from the context, escaped for PromQL strings: `{{pool}}` (each
   * pool under test in turn), `{{version}}` (that pool's version), `{{environment}}`, and `vars`.
   */
  query: string;
  threshold: MetricThreshold;
  /**
   * Run a range query over the last `windowMs` instead of an instant query. The series is judged on its
   * worst point (`reduce: 'worst'`), the newest (`'last'`) or the mean (`'avg'`); NaN points are skipped.
   * @default undefined (instant query)
   */
  range?: { windowMs: number; stepMs?: number; reduce?: 'worst' | 'last' | 'avg' };
  /** Shown after values in reasons, e.g. `' ms'`. @default '' */
  unit?: string;
  /**
   * PromQL for the number of observations behind the value (same placeholders), e.g.
   * `sum(increase(http_requests_total{pool="{{pool}}"}[1m]))`. With it, a value past its limit on fewer
   * than `minSamples` observations is `inconclusive` (too few to fail), and a `rate` is judged by a
   * sequential test. @default undefined (the value alone decides)
   */
  samples?: string;
  /** Observations needed before a value past its limit fails (with `samples`). @default 100 */
  minSamples?: number;
  /**
   * The value is a share of the `samples` (an error rate, 0..1): a value above `max` fails only when
   * a sequential test (α 0.01, any number of looks) says the true share is above it. @default false
   */
  rate?: boolean;
  /**
   * The threshold is a whole-service target: scale it by the pool's traffic weight (a 10,000 rps floor
   * is 500 rps at a 5 % canary). @default false
   */
  perPoolShare?: boolean;
  /**
   * PromQL for the whole service's rate: a `min` floor is capped at 80 % of the pool's share of it, so
   * a version that serves all it is offered never fails a floor the offered load cannot reach.
   * @default undefined
   */
  offered?: string;
}
