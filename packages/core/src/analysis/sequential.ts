// Anytime-valid tests for analysis gates: a gate may look at every interval, as often as it likes, and
// the chance that a healthy version ever fails stays below the test's α (Ville's inequality applied to a
// mixture of likelihood ratios, a non-negative (super)martingale under the null hypothesis).

/**
 * The default α of every sequential test here: the chance that a version at (or under) the limit is ever
 * failed, however many times the gate looks. @default 0.01
 */
export const sequentialAlpha = 0.01;

/** Ratios of the alternatives mixed by the tests (equal weights): each is a likelihood ratio against the null. */
const RATIOS = [1.25, 1.5, 2, 3, 5, 10, 20] as const;

function logMeanExp(logs: readonly number[]): number {
  const top = Math.max(...logs);
  if (!Number.isFinite(top)) return top;
  let sum = 0;
  for (const l of logs) sum += Math.exp(l - top);
  return top + Math.log(sum / logs.length);
}

/** What {@link rateAboveLimit} finds. */
export interface RateEvidence {
  /** `events / trials`, or `NaN` without trials. */
  rate: number;
  /** The e-value against "the true rate is at most the limit" (reject when ≥ 1/α). */
  eValue: number;
  /** True when the evidence says the true rate is above the limit, at level α. */
  above: boolean;
  /** Anytime-valid one-sided lower confidence bound of the true rate at level 1 − α (0 when the rate is at or under the limit). */
  lower: number;
}

function logRateEvidence(events: number, trials: number, limit: number): number {
  if (limit <= 0) return events > 0 ? Number.POSITIVE_INFINITY : 0;
  if (limit >= 1) return Number.NEGATIVE_INFINITY;
  const logs = RATIOS.map((r) => {
    const p1 = Math.min(1 - 1e-9, limit * r, limit + (1 - limit) * (1 - 1 / r));
    return events * Math.log(p1 / limit) + (trials - events) * Math.log((1 - p1) / (1 - limit));
  });
  return logMeanExp(logs);
}

/**
 * Tests whether a rate (errors per request, or the share of requests slower than a latency limit) is
 * above `limit`, from `events` out of `trials`, with a sequential mixture probability ratio test: a
 * version whose true rate is at most the limit is failed with probability at most `alpha`, whatever
 * the number of looks at the growing sample. A handful of requests never fails a limit: one error in 20
 * requests at a 2 % limit gives an e-value of about 1, far from 1/α = 100.
 *
 * @example
 * ```ts
 * rateAboveLimit({ events: 1, trials: 20, limit: 0.02 }).above   // false: 1/20 says little
 * rateAboveLimit({ events: 25, trials: 500, limit: 0.02 }).above // true: 5 % of 500 is past 2 %
 * ```
 */
export function rateAboveLimit(input: {
  events: number;
  trials: number;
  limit: number;
  alpha?: number;
}): RateEvidence {
  const { events, trials, limit } = input;
  const alpha = input.alpha ?? sequentialAlpha;
  const rate = trials > 0 ? events / trials : Number.NaN;
  if (!(trials > 0) || !(events >= 0) || events > trials) return { rate, eValue: 1, above: false, lower: 0 };
  const logE = logRateEvidence(events, trials, limit);
  const threshold = Math.log(1 / alpha);
  // The lower bound: the smallest limit the test still rejects, found by bisection (the evidence falls
  // as the limit rises towards the observed rate).
  // Below the limit there is nothing to bound (the bound is at most the rate): skip the search.
  let lo = 0;
  let hi = rate > limit ? rate : 0;
  if (hi > 0 && logRateEvidence(events, trials, 1e-12) < threshold) hi = 0;
  for (let i = 0; i < 30 && hi > 0; i++) {
    const mid = (lo + hi) / 2;
    if (logRateEvidence(events, trials, mid) >= threshold) lo = mid;
    else hi = mid;
  }
  return { rate, eValue: Math.exp(Math.min(700, logE)), above: logE >= threshold, lower: lo };
}

/** Cumulative counts of one pool: trials (requests) and events (errors, or slow requests). */
export interface Counts {
  trials: number;
  events: number;
}

/**
 * A sequential two-sample test that a canary's event rate (errors, slow requests) is higher than its
 * control's, anytime-valid: feed it cumulative counts at every look; it takes the increments since the
 * last look and, given how many events happened in both pools in that interval, scores the share that
 * fell on the canary against the share its traffic predicts (the conditional binomial), mixing
 * alternatives where the canary's rate is 1.25× … 20× the control's. With equal rates the chance it
 * ever crosses 1/α is at most α, whatever the number of looks and however the traffic split changes.
 *
 * @example
 * ```ts
 * const test = new TwoSampleEventTest()
 * test.update({ trials: 100, events: 5 }, { trials: 100, events: 0 })
 * test.eValue() // > 1: evidence that the canary errs more
 * ```
 */
export class TwoSampleEventTest {
  #logs: number[] = RATIOS.map(() => 0);
  #last: { canary: Counts; control: Counts } | undefined;
  /** Canary and control counts seen so far (cumulative, as last given). */
  canary: Counts = { trials: 0, events: 0 };
  control: Counts = { trials: 0, events: 0 };

  /** `allowedRatio`: the null hypothesis is "canary rate ≤ allowedRatio × control rate". @default 1 */
  constructor(private readonly allowedRatio = 1) {}

  /** Feeds cumulative counts; counts that went down (a pool restarted its figures) restart the increments. */
  update(canary: Counts, control: Counts): void {
    const prev = this.#last;
    const reset = !prev || canary.trials < prev.canary.trials || control.trials < prev.control.trials;
    const base = reset ? { canary: zero, control: zero } : prev;
    this.addIncrement(
      { trials: canary.trials - base.canary.trials, events: canary.events - base.canary.events },
      { trials: control.trials - base.control.trials, events: control.events - base.control.events },
    );
    this.#last = { canary: { ...canary }, control: { ...control } };
    this.canary = { ...canary };
    this.control = { ...control };
  }

  /** Feeds the counts of one interval (not cumulative). */
  addIncrement(canary: Counts, control: Counts): void {
    const nc = Math.max(0, canary.trials);
    const nb = Math.max(0, control.trials);
    const ec = Math.max(0, Math.min(canary.events, nc));
    const eb = Math.max(0, Math.min(control.events, nb));
    if (nc === 0 || nb === 0 || ec + eb === 0) return;
    const share = (ratio: number) => (ratio * nc) / (ratio * nc + nb);
    const p0 = share(this.allowedRatio);
    this.#logs = this.#logs.map((l, i) => {
      const p1 = share(this.allowedRatio * RATIOS[i]!);
      return l + ec * Math.log(p1 / p0) + eb * Math.log((1 - p1) / (1 - p0));
    });
  }

  /** The mixture e-value so far (≥ 1/α rejects "the canary's rate is no higher"). */
  eValue(): number {
    return Math.exp(Math.min(700, logMeanExp(this.#logs)));
  }

  /** True when the evidence says the canary's rate is higher, at level α. */
  rejects(alpha = sequentialAlpha): boolean {
    return logMeanExp(this.#logs) >= Math.log(1 / alpha);
  }
}

const zero: Counts = { trials: 0, events: 0 };

/**
 * The α spent at the `look`-th look (1-based) when a fixed-sample test is repeated on a growing sample:
 * `alpha / (look · (look + 1))`, whose sum over all looks is `alpha` (a union bound, valid whatever
 * the dependence between looks).
 *
 * @example
 * ```ts
 * spentAlpha(0.01, 1) // 0.005
 * ```
 */
export function spentAlpha(alpha: number, look: number): number {
  const k = Math.max(1, Math.floor(look));
  return alpha / (k * (k + 1));
}
