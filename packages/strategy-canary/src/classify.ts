// How the judge reads its tests as checks: latency (Kayenta's classifier), errors and slow requests
// (sequential tests), absolute limits on the canary alone.
import {
  type Check,
  type Counts,
  type PoolTraffic,
  rateAboveLimit,
  spentAlpha,
  TwoSampleEventTest,
} from '@codegraph/release-core';
import type { resolveJudgeOptions } from './judge.js';
import { mannWhitney, mean, quantile } from './stats.js';

type Resolved = ReturnType<typeof resolveJudgeOptions>;
const round = (v: number, digits = 3) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v);

/**
 * Classifies the canary's latency against the control's, as Kayenta's Mann–Whitney classifier does, at
 * look `look` of this canary (1-based): the interval's α is `(1 − confidence)/(look·(look+1))`.
 */
export function judgeLatency(
  canary: readonly number[],
  control: readonly number[],
  o: Resolved,
  look = 1,
): Check {
  const name = 'latency.mann_whitney';
  const level = 1 - spentAlpha(1 - o.confidence, look);
  const threshold = `mean ratio <= ${o.allowedIncrease} or not significant at ${round(level, 6)}`;
  const base = { name, threshold, samples: canary.length + control.length };
  const same = canary.length === control.length && canary.every((v, i) => v === control[i]);
  if (same)
    return { ...base, verdict: 'pass', observed: 1, reason: 'canary and control latencies are identical' };
  const r = mannWhitney(canary, control, level);
  const ratio = mean(canary) / mean(control);
  const significant = r.lower > o.tolerance * Math.abs(r.estimate) && r.estimate > 0;
  const large = !Number.isFinite(ratio) || ratio > o.allowedIncrease;
  const high = significant && large;
  const facts = `mean ratio ${round(ratio)}, shift ${round(r.estimate)} ms [${round(r.lower)}, ${round(r.upper)}] at ${round(level, 6)} (look ${look}), ${canary.length} vs ${control.length} samples, p=${round(r.pGreater, 6)}`;
  return {
    ...base,
    verdict: high ? 'fail' : 'pass',
    observed: round(ratio),
    reason: high
      ? `canary latency is higher than control: ${facts}`
      : `no significant latency increase beyond ${o.allowedIncrease}x: ${facts}`,
  };
}

const rateOf = (t: Counts) => (t.trials === 0 ? 0 : t.events / t.trials);

/** Reads a two-sample sequential test as a check (errors, or slow requests). */
export function sequentialCheck(
  name: string,
  what: string,
  test: TwoSampleEventTest,
  o: Resolved,
  margin: number,
): Check {
  const c = test.canary;
  const b = test.control;
  const diff = rateOf(c) - rateOf(b);
  const e = test.eValue();
  // The judge's α is shared by its two sequential tests (errors, slow requests): each gets half.
  const alpha = o.alpha / 2;
  const high = test.rejects(alpha) && diff > margin;
  const facts = `${c.events}/${c.trials} vs ${b.events}/${b.trials} (difference ${round(diff, 4)}, e-value ${round(e, 2)}, fails at ${round(1 / alpha, 2)})`;
  return {
    name,
    verdict: high ? 'fail' : 'pass',
    observed: round(diff, 4),
    threshold: `difference <= ${margin} or e-value < ${round(1 / alpha, 2)} (α ${alpha}, any number of looks)`,
    samples: c.trials + b.trials,
    reason: high
      ? `canary ${what} are significantly higher: ${facts}`
      : `no significant ${what} increase: ${facts}`,
  };
}

/**
 * Tests whether the canary's error rate is higher than the control's from cumulative counts alone
 * (one look; {@link canaryJudge} feeds a sequential test at every look instead).
 */
export function judgeErrors(canary: PoolTraffic, control: PoolTraffic, o: Resolved): Check {
  const test = new TwoSampleEventTest();
  test.update(
    { trials: canary.requests, events: canary.errors },
    { trials: control.requests, events: control.errors },
  );
  return sequentialCheck('errors.sequential', 'errors', test, o, o.allowedErrorRateIncrease);
}

/** Absolute limits on the canary alone, judged by the sequential rate test (never on a handful of requests). */
export function absolute(canary: PoolTraffic, o: Resolved): Check[] {
  const out: Check[] = [];
  const { p95Ms, errorRate } = o.thresholds;
  if (p95Ms !== undefined) {
    // p95 <= limit exactly when at most 5 % of requests are slower than the limit.
    const slow = canary.latencyMs.filter((v) => v > p95Ms).length;
    const n = canary.latencyMs.length;
    const e = rateAboveLimit({ events: slow, trials: n, limit: 0.05, alpha: o.alpha });
    const v = round(quantile(canary.latencyMs, 0.95), 2);
    out.push({
      name: 'latency.p95_ms',
      verdict: e.above ? 'fail' : 'pass',
      observed: v,
      threshold: `<= ${p95Ms}`,
      samples: n,
      reason: `canary p95 ${v} ms vs limit ${p95Ms} ms: ${slow}/${n} samples slower (${round(e.rate * 100, 2)} %, lower bound ${round(e.lower * 100, 2)} % ${e.above ? '> 5 %' : 'not > 5 %'} at α ${o.alpha})`,
    });
  }
  if (errorRate !== undefined) {
    const e = rateAboveLimit({
      events: canary.errors,
      trials: canary.requests,
      limit: errorRate,
      alpha: o.alpha,
    });
    const v = round(e.rate, 4);
    out.push({
      name: 'errors.rate',
      verdict: e.above ? 'fail' : 'pass',
      observed: v,
      threshold: `<= ${errorRate}`,
      samples: canary.requests,
      reason: `canary error rate ${v} (${canary.errors}/${canary.requests}), lower bound ${round(e.lower, 4)} ${e.above ? 'above' : 'not above'} ${errorRate} at α ${o.alpha}`,
    });
  }
  return out;
}
