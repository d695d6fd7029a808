// Sample size and traffic share for Prometheus checks: a limit fails only on enough evidence, and a
// whole-service target is judged against the share of traffic a pool actually gets.
import { rateAboveLimit, sequentialAlpha } from '../../analysis/sequential.js';
import type { Check } from '../../analysis/types.js';
import type { MetricThreshold, PrometheusMetric } from './metric.js';

/** What a check's evidence needs besides its own value. */
export interface Evidence {
  /** Observations behind the value (the metric's `samples` query), when it has one. */
  samples?: number | undefined;
  /** The whole service's rate (the metric's `offered` query), when it has one. */
  offered?: number | undefined;
}

/** The defaults the metric options document. */
export const evidenceDefaults = Object.freeze({ minSamples: 100, offeredTolerance: 0.8 });

/**
 * The threshold a pool is held to: with `perPoolShare`, a whole-service target scaled by the pool's
 * traffic weight (a 10,000 rps floor is 500 rps at a 5 % canary); with `offered`, a floor is also
 * capped at the share of the traffic the service is offered (`offeredTolerance` of it), so a version
 * serving everything it is sent is never failed for load that does not exist.
 */
export function thresholdFor(
  m: PrometheusMetric,
  weight: number | undefined,
  offered: number | undefined,
): { threshold: MetricThreshold; note: string } {
  const share = m.perPoolShare && weight !== undefined ? Math.max(0, Math.min(100, weight)) / 100 : 1;
  const t: MetricThreshold = { ...m.threshold };
  const notes: string[] = [];
  if (m.perPoolShare) {
    if (t.min !== undefined) t.min = round(t.min * share);
    if (t.max !== undefined) t.max = round(t.max * share);
    notes.push(`scaled by the pool's traffic share ${round(share * 100)} %`);
  }
  if (t.min !== undefined && offered !== undefined && Number.isFinite(offered)) {
    const cap = round(offered * share * evidenceDefaults.offeredTolerance);
    if (cap < t.min) {
      t.min = cap;
      notes.push(`capped at ${evidenceDefaults.offeredTolerance * 100} % of the offered ${round(offered)}`);
    }
  }
  return { threshold: t, note: notes.join(', ') };
}

/**
 * Weighs a check by its sample size: with `rate: true` (the value is a share of the samples, 0..1), a
 * value past `max` fails only when the sequential rate test says the true share is past it (α 0.01,
 * any number of looks); otherwise a value past the limit on fewer than `minSamples` observations is
 * `inconclusive`, never a verdict. A value within its limits stays a pass.
 */
export function weigh(check: Check, m: PrometheusMetric, evidence: Evidence): Check {
  const n = evidence.samples;
  if (m.samples === undefined) return check;
  if (n === undefined || !Number.isFinite(n) || n < 0) {
    return {
      ...check,
      verdict: 'inconclusive',
      reason: `${check.reason}; sample count unknown (no value for ${m.samples})`,
    };
  }
  const samples = Math.round(n);
  const withN = { ...check, samples };
  if (check.verdict !== 'fail' || typeof check.observed !== 'number') return withN;
  const max = m.threshold.max;
  if (m.rate && max !== undefined && check.observed > max) {
    const e = rateAboveLimit({
      events: Math.round(check.observed * samples),
      trials: samples,
      limit: max,
      alpha: sequentialAlpha,
    });
    return e.above
      ? {
          ...withN,
          reason: `${check.reason} over ${samples} samples (lower bound ${round(e.lower)} > ${max} at α ${sequentialAlpha})`,
        }
      : {
          ...withN,
          verdict: 'pass',
          reason: `${check.observed} over ${samples} samples is not shown above ${max} (e-value ${round(e.eValue)} < ${1 / sequentialAlpha})`,
        };
  }
  const min = m.minSamples ?? evidenceDefaults.minSamples;
  if (samples < min) {
    return {
      ...withN,
      verdict: 'inconclusive',
      reason: `${check.reason}, but over only ${samples} samples (< minSamples ${min}): too few to fail`,
    };
  }
  return withN;
}

const round = (v: number) => Math.round(v * 1e4) / 1e4;
