// Pure statistics behind the canary judge: no I/O, no clock, no randomness.

/** Standard normal CDF (Φ), by the complementary error function (|error| < 1.2e-7). */
export function normalCdf(z: number): number {
  // Numerical Recipes' erfc approximation, accurate to 1.2e-7 everywhere.
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const poly =
    -x * x -
    1.26551223 +
    t *
      (1.00002368 +
        t *
          (0.37409196 +
            t *
              (0.09678418 +
                t *
                  (-0.18628806 +
                    t *
                      (0.27886807 +
                        t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const erfc = t * Math.exp(poly);
  return z >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** Standard normal quantile (Φ⁻¹) by Acklam's rational approximation (relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1))
    return p === 0 ? Number.NEGATIVE_INFINITY : p === 1 ? Number.POSITIVE_INFINITY : Number.NaN;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628274631,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
    );
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

/** What {@link mannWhitney} finds when comparing an experiment (the canary) to a control (the baseline). */
export interface MannWhitneyResult {
  /** U of the experiment: pairs (x, y) with x > y, ties counting one half. */
  u: number;
  /** z score of `u` under "no difference", with tie and continuity corrections. */
  z: number;
  /** Two-sided p-value (normal approximation). */
  pValue: number;
  /** One-sided p-value for "the experiment is larger". */
  pGreater: number;
  /** Hodges–Lehmann estimate of the shift experiment − control: the median of all pairwise differences. */
  estimate: number;
  /** Two-sided confidence interval of the shift at the level asked for (Moses' distribution-free interval). */
  lower: number;
  upper: number;
}

/**
 * The Mann–Whitney U test (Wilcoxon rank-sum) of `experiment` against `control`, with the Hodges–Lehmann
 * estimate of the location shift and its confidence interval, as Kayenta's judge computes them.
 * The p-values use the normal approximation with tie and continuity corrections (SciPy's `asymptotic`
 * method); the interval takes order statistics of the m·n pairwise differences.
 *
 * @example
 * ```ts
 * const r = mannWhitney([19, 22, 16, 29, 24], [20, 11, 17, 12], 0.95) // r.u === 17, r.pValue ≈ 0.1113
 * ```
 */
export function mannWhitney(
  experiment: readonly number[],
  control: readonly number[],
  confidence: number,
): MannWhitneyResult {
  const m = experiment.length;
  const n = control.length;
  if (m === 0 || n === 0) throw new RangeError('mannWhitney needs at least one value on each side');
  // Ranks by merging the two sorted samples (typed-array sorts: the judge runs this at every look).
  const xs = Float64Array.from(experiment).sort();
  const ys = Float64Array.from(control).sort();
  let rankSum = 0;
  let tieTerm = 0;
  let i = 0;
  let j = 0;
  let rank0 = 0; // values ranked so far
  while (i < m || j < n) {
    const v = j >= n || (i < m && xs[i]! <= ys[j]!) ? xs[i]! : ys[j]!;
    let tx = 0;
    let ty = 0;
    while (i < m && xs[i] === v) {
      i++;
      tx++;
    }
    while (j < n && ys[j] === v) {
      j++;
      ty++;
    }
    const t = tx + ty;
    const rank = rank0 + (t + 1) / 2;
    tieTerm += t * t * t - t;
    rankSum += tx * rank;
    rank0 += t;
  }
  const u = rankSum - (m * (m + 1)) / 2;
  const N = m + n;
  const mean = (m * n) / 2;
  const variance = ((m * n) / 12) * (N + 1 - tieTerm / (N * (N - 1)));
  const sd = Math.sqrt(variance);
  const zOf = (delta: number) => (sd === 0 ? 0 : delta / sd);
  const z = zOf(u - mean - 0.5 * Math.sign(u - mean));
  const pValue = sd === 0 ? 1 : Math.min(1, 2 * (1 - normalCdf(Math.abs(z))));
  const pGreater = sd === 0 ? 1 : 1 - normalCdf(zOf(u - mean - 0.5));

  // Order statistics of the m·n pairwise differences, selected without building them (the judge runs at
  // every look, with up to maxSamples² pairs).
  const pairs = m * n;
  const crit = normalQuantile(1 - (1 - confidence) / 2);
  const below = Math.max(0, Math.min(pairs - 1, Math.floor(mean - crit * sd)));
  const mid = pairs >> 1;
  const estimate =
    pairs % 2 === 1 ? pairDiff(xs, ys, mid) : (pairDiff(xs, ys, mid - 1) + pairDiff(xs, ys, mid)) / 2;
  return {
    u,
    z,
    pValue,
    pGreater,
    estimate,
    lower: pairDiff(xs, ys, below),
    upper: pairDiff(xs, ys, pairs - 1 - below),
  };
}

/** How many pairwise differences x − y are at most `t` (x, y sorted ascending): O(m + n). */
function countAtMost(xs: Float64Array, ys: Float64Array, t: number): number {
  let count = 0;
  let j = 0;
  const n = ys.length;
  // For ascending x, the first y with x − y <= t (i.e. y >= x − t) moves right.
  for (let i = 0; i < xs.length; i++) {
    const bound = xs[i]! - t;
    while (j < n && ys[j]! < bound) j++;
    count += n - j;
  }
  return count;
}

/**
 * The k-th smallest (0-based) pairwise difference x − y, by bisection on its value and then snapping to
 * the nearest actual difference: exact, in O((m + n) log range) instead of sorting m·n values.
 */
export function pairDiff(xs: Float64Array, ys: Float64Array, k: number): number {
  let lo = xs[0]! - ys[ys.length - 1]!;
  let hi = xs[xs.length - 1]! - ys[0]!;
  if (countAtMost(xs, ys, lo) >= k + 1) return lo;
  // Invariant: count(lo) < k + 1 <= count(hi).
  for (let i = 0; i < 200 && hi - lo > 1e-6 * Math.max(1, Math.abs(lo), Math.abs(hi)); i++) {
    const mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    if (countAtMost(xs, ys, mid) >= k + 1) hi = mid;
    else lo = mid;
  }
  // The answer is the smallest difference greater than lo: find it exactly.
  let best = hi;
  let j = 0;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    while (j < ys.length && x - ys[j]! > lo) j++;
    // ys[j-1] gives the smallest x − y > lo for this x (y ascending, so x − y descending).
    if (j > 0) {
      const d = x - ys[j - 1]!;
      if (d > lo && d < best) best = d;
    }
  }
  return best;
}

/** ln Γ(x) by Lanczos' approximation (g = 7), for log-factorials of large counts. */
function logGamma(x: number): number {
  const g = [
    0.9999999999998099, 676.5203681218851, -1259.1392167224028, 771.3234287776531, -176.6150291621406,
    12.507343278686905, -0.13857109526572012, 9.984369578019572e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const y = x - 1;
  let a = g[0]!;
  const t = y + 7.5;
  for (let i = 1; i < 9; i++) a += g[i]! / (y + i);
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

const logChoose = (n: number, k: number) => logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);

/**
 * One-sided Fisher exact test that the experiment's failure rate is higher than the control's:
 * P(X ≥ experimentFailures) for X hypergeometric with the table's margins. Exact for any counts, so a
 * canary's handful of requests at a low weight is judged as fairly as thousands.
 *
 * @example
 * ```ts
 * fisherGreater({ failures: 3, total: 4 }, { failures: 1, total: 4 }) // ≈ 0.2429 (the lady tasting tea)
 * ```
 */
export function fisherGreater(
  experiment: { failures: number; total: number },
  control: { failures: number; total: number },
): number {
  const n = experiment.total;
  const failures = experiment.failures + control.failures;
  const N = n + control.total;
  if (n === 0 || control.total === 0) return 1;
  const top = Math.min(n, failures);
  const base = logChoose(N, n);
  let p = 0;
  for (let k = experiment.failures; k <= top; k++) {
    if (failures - k > N - n) continue;
    p += Math.exp(logChoose(failures, k) + logChoose(N - failures, n - k) - base);
  }
  return Math.min(1, p);
}

/** The `q`-quantile (0..1) by the nearest-rank method; `NaN` when there are no values. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

/** The arithmetic mean; `NaN` when there are no values. */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}
