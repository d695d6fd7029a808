import {
  CapabilityMissingError,
  type Check,
  ConfigInvalidError,
  type PoolState,
  type PoolTraffic,
  type Verdict,
  type Verifier,
  type VerifierResult,
  type VerifyContext,
} from '@codegraph/release-core';
import { fisherGreater, mannWhitney, mean, quantile } from './stats.js';

/** Options of {@link canaryJudge}. */
export interface CanaryJudgeOptions {
  /** The verifier's name, which analysis steps list in `verifiers`. @default 'judge' */
  name?: string;
  /** Confidence level of the Mann–Whitney interval and of the error-count test (Kayenta uses 0.98). @default 0.98 */
  confidence?: number;
  /**
   * Allowed effect size on latency: the canary fails when its mean latency exceeds the control's by more
   * than this ratio (and the difference is significant). Kayenta's `allowedIncrease`. @default 1.5
   */
  allowedIncrease?: number;
  /**
   * Allowed effect size on errors: the canary fails when its error rate exceeds the control's by more than
   * this many (absolute, 0..1; and the difference is significant). @default 0.01
   */
  allowedErrorRateIncrease?: number;
  /** Kayenta's tolerance band: the interval's lower bound must clear this fraction of the shift estimate. @default 0.25 */
  tolerance?: number;
  /** Requests each pool needs before it is judged; fewer is `inconclusive`, never a pass. @default 50 */
  minRequests?: number;
  /** Most recent latency samples used per pool (the test compares m·n pairs). @default 500 */
  maxSamples?: number;
  /** Absolute limits on the canary alone, judged beside the comparison. @default {} */
  thresholds?: {
    /** Highest acceptable p95 latency of the canary, in milliseconds. */
    p95Ms?: number;
    /** Highest acceptable error rate of the canary (0..1). */
    errorRate?: number;
  };
}

/** The defaults {@link CanaryJudgeOptions} documents, in one place. */
export const canaryJudgeDefaults = Object.freeze({
  name: 'judge',
  confidence: 0.98,
  allowedIncrease: 1.5,
  allowedErrorRateIncrease: 0.01,
  tolerance: 0.25,
  minRequests: 50,
  maxSamples: 500,
});

const bad = (message: string) => new ConfigInvalidError(`canaryJudge: ${message}`, { plugin: 'canaryJudge' });

/** Checks options and fills defaults; throws `ConfigInvalidError` when the judge is made. */
export function resolveJudgeOptions(o: CanaryJudgeOptions) {
  const r = { ...canaryJudgeDefaults, ...o, thresholds: { ...o.thresholds } };
  if (typeof r.name !== 'string' || r.name === '') throw bad('name must be a non-empty string');
  if (!(r.confidence > 0.5 && r.confidence < 1))
    throw bad(`confidence must be in (0.5, 1), got ${r.confidence}`);
  if (!(r.allowedIncrease >= 1)) throw bad(`allowedIncrease must be a ratio >= 1, got ${r.allowedIncrease}`);
  if (!(r.allowedErrorRateIncrease >= 0 && r.allowedErrorRateIncrease < 1))
    throw bad(`allowedErrorRateIncrease must be in [0, 1), got ${r.allowedErrorRateIncrease}`);
  if (!(r.tolerance >= 0)) throw bad(`tolerance must be >= 0, got ${r.tolerance}`);
  if (!(Number.isInteger(r.minRequests) && r.minRequests >= 1))
    throw bad(`minRequests must be an integer >= 1, got ${r.minRequests}`);
  if (!(Number.isInteger(r.maxSamples) && r.maxSamples >= 2))
    throw bad(`maxSamples must be an integer >= 2, got ${r.maxSamples}`);
  const { p95Ms, errorRate } = r.thresholds;
  if (p95Ms !== undefined && !(p95Ms > 0)) throw bad(`thresholds.p95Ms must be > 0, got ${p95Ms}`);
  if (errorRate !== undefined && !(errorRate >= 0 && errorRate <= 1))
    throw bad(`thresholds.errorRate must be in [0, 1], got ${errorRate}`);
  return r;
}

type Resolved = ReturnType<typeof resolveJudgeOptions>;
const round = (v: number, digits = 3) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v);

/** Classifies the canary's latency against the control's, as Kayenta's Mann–Whitney classifier does. */
export function judgeLatency(canary: readonly number[], control: readonly number[], o: Resolved): Check {
  const name = 'latency.mann_whitney';
  const threshold = `mean ratio <= ${o.allowedIncrease} or not significant at ${o.confidence}`;
  const same = canary.length === control.length && canary.every((v, i) => v === control[i]);
  if (same)
    return {
      name,
      verdict: 'pass',
      observed: 1,
      threshold,
      reason: 'canary and control latencies are identical',
    };
  const r = mannWhitney(canary, control, o.confidence);
  const ratio = mean(canary) / mean(control);
  const significant = r.lower > o.tolerance * Math.abs(r.estimate) && r.estimate > 0;
  const large = !Number.isFinite(ratio) || ratio > o.allowedIncrease;
  const high = significant && large;
  const facts = `mean ratio ${round(ratio)}, shift ${round(r.estimate)} ms [${round(r.lower)}, ${round(r.upper)}] at ${o.confidence}, p=${round(r.pGreater, 6)}`;
  return {
    name,
    verdict: high ? 'fail' : 'pass',
    observed: round(ratio),
    threshold,
    reason: high
      ? `canary latency is higher than control: ${facts}`
      : `no significant latency increase beyond ${o.allowedIncrease}x: ${facts}`,
  };
}

/** Tests whether the canary's error rate is higher than the control's (one-sided Fisher exact test). */
export function judgeErrors(canary: PoolTraffic, control: PoolTraffic, o: Resolved): Check {
  const rateOf = (t: PoolTraffic) => (t.requests === 0 ? 0 : t.errors / t.requests);
  const diff = rateOf(canary) - rateOf(control);
  const p = fisherGreater(
    { failures: canary.errors, total: canary.requests },
    { failures: control.errors, total: control.requests },
  );
  const high = p < 1 - o.confidence && diff > o.allowedErrorRateIncrease;
  const facts = `${canary.errors}/${canary.requests} vs ${control.errors}/${control.requests} (difference ${round(diff, 4)}, p=${round(p, 6)})`;
  return {
    name: 'errors.fisher',
    verdict: high ? 'fail' : 'pass',
    observed: round(diff, 4),
    threshold: `rate difference <= ${o.allowedErrorRateIncrease} or not significant at ${o.confidence}`,
    reason: high
      ? `canary errors are significantly higher: ${facts}`
      : `no significant error increase: ${facts}`,
  };
}

function absolute(canary: PoolTraffic, o: Resolved): Check[] {
  const out: Check[] = [];
  const { p95Ms, errorRate } = o.thresholds;
  if (p95Ms !== undefined) {
    const v = round(quantile(canary.latencyMs, 0.95), 2);
    const ok = v <= p95Ms;
    out.push({
      name: 'latency.p95_ms',
      verdict: ok ? 'pass' : 'fail',
      observed: v,
      threshold: `<= ${p95Ms}`,
      reason: `canary p95 ${v} ms ${ok ? 'within' : 'above'} ${p95Ms} ms`,
    });
  }
  if (errorRate !== undefined) {
    const v = round(canary.errors / canary.requests, 4);
    const ok = v <= errorRate;
    out.push({
      name: 'errors.rate',
      verdict: ok ? 'pass' : 'fail',
      observed: v,
      threshold: `<= ${errorRate}`,
      reason: `canary error rate ${v} (${canary.errors}/${canary.requests}) ${ok ? 'within' : 'above'} ${errorRate}`,
    });
  }
  return out;
}

/** The pool the canary is compared with: the second pool under test (a baseline), else the serving stable. */
async function controlPool(ctx: VerifyContext): Promise<PoolState | undefined> {
  if (ctx.pools[1]) return ctx.pools[1];
  const state = await ctx.target.describe({ ...(ctx.signal ? { signal: ctx.signal } : {}) });
  return state.pools
    .filter((p) => p.version !== ctx.version && p.weight > 0)
    .sort((a, b) => b.weight - a.weight)[0];
}

const inconclusive = (name: string, reason: string): Check => ({
  name,
  verdict: 'inconclusive',
  observed: null,
  reason,
});

function verdictOf(checks: Check[]): Verdict {
  if (checks.some((c) => c.verdict === 'fail')) return 'fail';
  if (checks.length === 0 || checks.some((c) => c.verdict === 'inconclusive')) return 'inconclusive';
  return 'pass';
}

/**
 * A statistical canary judge, after Kayenta's: compares the canary's per-request latencies with the
 * control's by the Mann–Whitney U test (the canary fails when the shift's confidence interval clears
 * Kayenta's tolerance band and the mean ratio exceeds `allowedIncrease`), and its error counts by a
 * one-sided Fisher exact test (fails when significant and the rate exceeds the control's by more than
 * `allowedErrorRateIncrease`), plus optional absolute thresholds on the canary alone.
 *
 * The canary is the first pool under test; the control is the second (the canary strategy's baseline
 * pool), else the serving pool of another version (the stable). Samples come from the target's
 * `traffic(pool)` capability (the local target's proxy or nginx's access log): figures since each pool
 * started taking traffic, latencies of the most recent `maxSamples` requests. Fewer than `minRequests`
 * requests on either side is `inconclusive`, never a pass. A target without `traffic` is a
 * non-retryable `CapabilityMissingError`.
 *
 * @example
 * ```ts
 * const engine = createReleaseEngine({
 *   strategy: canary({ weights: [10, 30, 50], baseline: true, analysis: { verifiers: ['judge'], gate: { count: 3, intervalMs: 2000 } } }),
 *   verifiers: [canaryJudge({ allowedIncrease: 1.3, thresholds: { p95Ms: 250 } })],
 *   target, store, environment: 'production',
 * })
 * ```
 */
export function canaryJudge(options: CanaryJudgeOptions = {}) {
  const o = resolveJudgeOptions(options);
  return {
    name: o.name,
    async verify(ctx: VerifyContext): Promise<VerifierResult> {
      const target = ctx.target;
      if (typeof target.traffic !== 'function') {
        throw new CapabilityMissingError(
          `canaryJudge needs per-pool traffic figures, which target ${target.name} does not report`,
          {
            plugin: o.name,
            retryable: false,
          },
        );
      }
      const canaryPool = ctx.pools[0];
      if (!canaryPool)
        return { verdict: 'inconclusive', checks: [inconclusive('judge.pools', 'no pool under test')] };
      const control = await controlPool(ctx);
      if (!control) {
        return {
          verdict: 'inconclusive',
          checks: [
            inconclusive(
              'judge.control',
              'no control pool to compare with (no baseline, no other serving version)',
            ),
          ],
        };
      }
      const opts = ctx.signal ? { signal: ctx.signal } : {};
      const [c, b] = await Promise.all([
        target.traffic(canaryPool.name, opts),
        target.traffic(control.name, opts),
      ]);
      const short = [c, b].filter((t) => t.requests < o.minRequests);
      if (short.length > 0) {
        const what = short.map((t) => `${t.pool} has ${t.requests}`).join(', ');
        return {
          verdict: 'inconclusive',
          checks: [
            inconclusive('judge.samples', `too few requests to judge: ${what} (need ${o.minRequests})`),
          ],
        };
      }
      const recent = (t: PoolTraffic) => t.latencyMs.slice(-o.maxSamples);
      const checks = [
        { ...judgeLatency(recent(c), recent(b), o), query: `traffic(${c.pool}) vs traffic(${b.pool})` },
        { ...judgeErrors(c, b, o), query: `traffic(${c.pool}) vs traffic(${b.pool})` },
        ...absolute({ ...c, latencyMs: recent(c) }, o),
      ];
      return { verdict: verdictOf(checks), checks };
    },
  } satisfies Verifier;
}
