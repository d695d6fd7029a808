/** The `q`-quantile (0..1) of `values` by the nearest-rank method; `NaN` when there are none. */
export function percentile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

/**
 * Latency percentiles in milliseconds, rounded to 0.01 ms (`NaN` without samples).
 *
 * @example
 * ```ts
 * const { p95 } = (await loadTest({ url })).latencyMs
 * ```
 */
export interface LatencySummary {
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Summarizes latency samples (milliseconds); every figure is `NaN` when there are no samples. */
export function summarizeLatency(samples: ArrayLike<number>): LatencySummary {
  const round = (v: number) => Math.round(v * 100) / 100;
  let sum = 0;
  let max = Number.NaN;
  for (let i = 0; i < samples.length; i++) {
    const v = samples[i]!;
    sum += v;
    if (!(v <= max)) max = v;
  }
  return {
    p50: round(percentile(samples, 0.5)),
    p90: round(percentile(samples, 0.9)),
    p95: round(percentile(samples, 0.95)),
    p99: round(percentile(samples, 0.99)),
    max: round(max),
    mean: round(samples.length ? sum / samples.length : Number.NaN),
  };
}
