import {
  CapabilityMissingError,
  type Check,
  ConfigInvalidError,
  type Counts,
  type PoolState,
  type PoolTraffic,
  TwoSampleEventTest,
  type Verdict,
  type Verifier,
  type VerifierResult,
  type VerifyContext,
} from '@codegraph/release-core';
import { absolute, judgeErrors, judgeLatency, sequentialCheck } from './classify.js';
import { quantile } from './stats.js';

export { judgeErrors, judgeLatency };

/** Options of {@link canaryJudge}. */
export interface CanaryJudgeOptions {
  /** The verifier's name, which analysis steps list in `verifiers`. @default 'judge' */
  name?: string;
  /**
   * Confidence of the Mann–Whitney interval at the first look (Kayenta uses 0.98). Its α (`1 − confidence`)
   * is spent over the looks of one canary (`α/(k(k+1))` at look k), so repeated looks never add up to
   * more than α. @default 0.98
   */
  confidence?: number;
  /**
   * α of the sequential error and slow-request tests together (each gets half): the chance a canary as
   * good as its control is ever failed by them, however often the gate looks. The absolute
   * `thresholds` use it too. @default 0.01
   */
  alpha?: number;
  /**
   * Allowed effect size on latency: the canary fails when its mean latency exceeds the control's by more
   * than this ratio (and the difference is significant). Kayenta's `allowedIncrease`. @default 1.5
   */
  allowedIncrease?: number;
  /**
   * Allowed effect size on errors: besides significance, the canary's observed error rate must exceed the
   * control's by more than this (absolute, 0..1). @default 0.005
   */
  allowedErrorRateIncrease?: number;
  /** Kayenta's tolerance band: the interval's lower bound must clear this fraction of the shift estimate. @default 0.25 */
  tolerance?: number;
  /** Requests each pool needs before it is judged; fewer is `inconclusive`, never a pass. @default 50 */
  minRequests?: number;
  /** Most recent latency samples used per pool (the test compares m·n pairs). @default 500 */
  maxSamples?: number;
  /**
   * A request slower than this (ms) counts as slow in the tail test. @default undefined: twice the
   * control's p99 once it holds 500 latency samples, frozen for the rest of the canary (the tail test
   * counts the requests after it)
   */
  slowMs?: number;
  /** Absolute limits on the canary alone, judged beside the comparison (sequential, at `alpha`). @default {} */
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
  alpha: 0.01,
  allowedIncrease: 1.5,
  allowedErrorRateIncrease: 0.005,
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
  if (!(r.alpha > 0 && r.alpha < 0.5)) throw bad(`alpha must be in (0, 0.5), got ${r.alpha}`);
  if (!(r.allowedIncrease >= 1)) throw bad(`allowedIncrease must be a ratio >= 1, got ${r.allowedIncrease}`);
  if (!(r.allowedErrorRateIncrease >= 0 && r.allowedErrorRateIncrease < 1))
    throw bad(`allowedErrorRateIncrease must be in [0, 1), got ${r.allowedErrorRateIncrease}`);
  if (!(r.tolerance >= 0)) throw bad(`tolerance must be >= 0, got ${r.tolerance}`);
  if (!(Number.isInteger(r.minRequests) && r.minRequests >= 1))
    throw bad(`minRequests must be an integer >= 1, got ${r.minRequests}`);
  if (!(Number.isInteger(r.maxSamples) && r.maxSamples >= 2))
    throw bad(`maxSamples must be an integer >= 2, got ${r.maxSamples}`);
  if (r.slowMs !== undefined && !(r.slowMs > 0)) throw bad(`slowMs must be > 0, got ${r.slowMs}`);
  const { p95Ms, errorRate } = r.thresholds;
  if (p95Ms !== undefined && !(p95Ms > 0)) throw bad(`thresholds.p95Ms must be > 0, got ${p95Ms}`);
  if (errorRate !== undefined && !(errorRate >= 0 && errorRate <= 1))
    throw bad(`thresholds.errorRate must be in [0, 1], got ${errorRate}`);
  return r;
}

const round = (v: number, digits = 3) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v);

/**
 * A request is slow when it takes more than this many times the control's p99: a tail regression must
 * be large (a loaded host slows a pool's tail by a few milliseconds, which is not a regression).
 */
const slowFactor = 2;

/** Control latency samples needed before the tail cutoff (their p99) is frozen. */
const slowCutoffSamples = 500;

/** What the judge remembers of one canary (a canary pool and its control, since they started counting). */
interface CanaryMemory {
  looks: number;
  /** Consecutive looks at which the latency classifier found the canary high. */
  latencyStreak: number;
  errors: TwoSampleEventTest;
  slow: TwoSampleEventTest;
  slowMs: number | undefined;
  /** The look from which slow requests are counted. */
  slowFrom?: number;
  seen: { canary: number; control: number };
  slowCounts: { canary: Counts; control: Counts };
}

/**
 * Looks in a row the latency classifier must find the canary high before it fails it: one look at a
 * fresh pool can catch a process that is still warming up (a JIT, a cold cache) while its control is not.
 */
export const latencyLooks = 3;

/** A latency failure counts once it held for {@link latencyLooks} looks in a row. */
function persistent(check: Check, m: CanaryMemory): Check {
  m.latencyStreak = check.verdict === 'fail' ? m.latencyStreak + 1 : 0;
  if (check.verdict !== 'fail' || m.latencyStreak >= latencyLooks) return check;
  return {
    ...check,
    verdict: 'pass',
    reason: `high at ${m.latencyStreak} of ${latencyLooks} looks in a row (not yet a failure): ${check.reason}`,
  };
}

/** Requests answered since the last look, as far as the latency ring still holds them. */
const fresh = (t: PoolTraffic, before: number) =>
  t.latencyMs.slice(t.latencyMs.length - Math.max(0, Math.min(t.latencyMs.length, t.requests - before)));

const add = (a: Counts, b: Counts): Counts => ({ trials: a.trials + b.trials, events: a.events + b.events });

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
 * A statistical canary judge that may look at every interval without inflating its false-positive rate:
 * - `errors.sequential`: a sequential (anytime-valid) test of the canary's errors against the control's
 *   (the conditional binomial of canary errors given all errors in each interval, a mixture probability
 *   ratio over 1.25×…20× alternatives); fails when its e-value reaches 1/`alpha` and the observed rate
 *   exceeds the control's by more than `allowedErrorRateIncrease`. α = 0.01 by default, for any number
 *   of looks.
 * - `latency.slow_share`: the same sequential test on requests slower than `slowMs` (default: twice the
 *   control's p99 once it holds 500 latency samples), which catches a slower tail (+200 ms on the p99) that a rank test misses.
 * - `latency.mann_whitney`: Kayenta's Mann–Whitney classifier with the Hodges–Lehmann shift (98 %
 *   interval and 0.25 tolerance by default), its α spent over looks (`α/(k(k+1))` at look k), failing
 *   when the interval clears the tolerance band and the mean ratio exceeds `allowedIncrease` at 3 looks
 *   in a row (a fresh pool still warming up is not a regression).
 * - optional absolute `thresholds` on the canary alone, judged by the sequential rate test (the p95 limit
 *   as "more than 5 % of requests slower than the limit").
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
  const memory = new Map<string, CanaryMemory>();
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
      const key = `${c.pool}@${c.since}|${b.pool}@${b.since}`;
      let m = memory.get(key);
      if (!m) {
        m = {
          looks: 0,
          latencyStreak: 0,
          errors: new TwoSampleEventTest(),
          slow: new TwoSampleEventTest(),
          slowMs: o.slowMs,
          seen: { canary: 0, control: 0 },
          slowCounts: { canary: { trials: 0, events: 0 }, control: { trials: 0, events: 0 } },
        };
        memory.set(key, m);
        // One judge serves many releases; it keeps the most recent canaries only.
        if (memory.size > 64) memory.delete(memory.keys().next().value as string);
      }
      m.looks++;
      m.errors.update({ trials: c.requests, events: c.errors }, { trials: b.requests, events: b.errors });
      if (m.slowMs === undefined) {
        // The tail cutoff is frozen once enough samples make a p99 robust to a stray outlier; counting
        // starts with the requests after it, so the cutoff is independent of what it judges.
        // The control's own p99: a slow canary cannot drag the cutoff up into its own slow tail.
        if (b.latencyMs.length >= slowCutoffSamples) {
          m.slowMs = slowFactor * quantile(b.latencyMs, 0.99);
          m.slowFrom = m.looks;
        }
      } else {
        const cut = m.slowMs;
        const slowOf = (v: number[]) => ({ trials: v.length, events: v.filter((x) => x > cut).length });
        const ic = slowOf(m.slowFrom === undefined ? c.latencyMs : fresh(c, m.seen.canary));
        const ib = slowOf(m.slowFrom === undefined ? b.latencyMs : fresh(b, m.seen.control));
        m.slowFrom ??= m.looks;
        m.slow.addIncrement(ic, ib);
        m.slowCounts.canary = add(m.slowCounts.canary, ic);
        m.slowCounts.control = add(m.slowCounts.control, ib);
        m.slow.canary = m.slowCounts.canary;
        m.slow.control = m.slowCounts.control;
      }
      m.seen = { canary: c.requests, control: b.requests };
      const recent = (t: PoolTraffic) => t.latencyMs.slice(-o.maxSamples);
      const query = `traffic(${c.pool}) vs traffic(${b.pool})`;
      const checks: Check[] = [
        { ...sequentialCheck('errors.sequential', 'errors', m.errors, o, o.allowedErrorRateIncrease), query },
        ...(m.slowMs !== undefined && m.slowCounts.canary.trials > 0
          ? [
              {
                ...sequentialCheck(
                  'latency.slow_share',
                  `requests slower than ${round(m.slowMs, 1)} ms`,
                  m.slow,
                  o,
                  o.allowedErrorRateIncrease,
                ),
                query,
              },
            ]
          : []),
        { ...persistent(judgeLatency(recent(c), recent(b), o, m.looks), m), query },
        ...absolute({ ...c, latencyMs: recent(c) }, o).map((x) => ({
          ...x,
          pool: c.pool,
          query: `traffic(${c.pool})`,
        })),
      ];
      return { verdict: verdictOf(checks), checks };
    },
  } satisfies Verifier;
}
