import type { OperationContext } from '../context.js';
import type { SerializedError } from '../errors.js';
import type { PoolState, Target } from '../target/types.js';

/** A verifier's judgement. `inconclusive` means the data cannot tell (no samples, NaN, stale). */
export type Verdict = 'pass' | 'fail' | 'inconclusive';

/** One measured check: what was observed against which threshold, and why it passed or not. */
export interface Check {
  /** e.g. `health.status`, `p95_latency_ms`, `header.strict-transport-security`. */
  name: string;
  verdict: Verdict;
  /** The value measured; `null` when nothing could be measured. */
  observed: string | number | boolean | null;
  /** The threshold or expected value, in words or as a number, e.g. `< 50`. */
  threshold?: string | number | boolean;
  /** One line saying why. */
  reason: string;
  /** The resolved query or URL, so a user sees exactly what was measured. */
  query?: string;
  /** The pool measured, when the check is about one pool. */
  pool?: string;
  /** How many samples (requests, series points) the value rests on. */
  samples?: number;
}

/** What a verifier returns. */
export interface VerifierResult {
  verdict: Verdict;
  checks: Check[];
}

/** What a verifier receives: which version and pools to judge, and where to reach them. */
export interface VerifyContext extends OperationContext {
  environment: string;
  /** The version under test. */
  version: string;
  /** The pools under test (a canary, a preview colour, the new rolling pool). */
  pools: PoolState[];
  /** The base URL to check: the first pool's first endpoint, or the target's front endpoint. */
  endpoint: string;
  /** The target, for verifiers that read its optional `traffic` capability. */
  target: Target;
}

/**
 * Judges a version: health, validation suite, metrics against thresholds.
 * Throwing means "could not measure" (an error), which a gate never reads as success.
 *
 * @example
 * ```ts
 * const healthy = {
 *   name: 'health',
 *   async verify({ endpoint, signal }) {
 *     const res = await fetch(`${endpoint}/health`, { signal })
 *     const ok = res.status === 200
 *     return { verdict: ok ? 'pass' : 'fail', checks: [{ name: 'health.status', verdict: ok ? 'pass' : 'fail', observed: res.status, threshold: 200, reason: ok ? 'healthy' : 'not 200' }] }
 *   },
 * } satisfies Verifier
 * ```
 */
export interface Verifier {
  readonly name: string;
  verify(ctx: VerifyContext): Promise<VerifierResult>;
}

/**
 * When and how often an analysis measures, and when it stops (Argo Rollouts' analysis semantics).
 * Every field has its default here and nowhere else (`gateDefaults` holds the same values).
 *
 * Policies a gate never bends:
 * - a verifier that never passed a measurement never passes (no data is not success);
 * - a thrown error is an `error` measurement, never a pass; an error that retrying cannot fix
 *   (a `ReleaseError` with `retryable: false`, e.g. a bad query or a missing capability)
 *   ends that verifier at `error` at once;
 * - the gate stops as soon as its outcome is decided: a verifier that fails, errors or turns
 *   inconclusive ends the gate; all verifiers passing early (`consecutiveSuccessLimit`) ends it too.
 *
 * @example
 * ```ts
 * const result = await runGate('canary-20', [prometheusAnalysis({ url, metrics: codegraphSlo() })], ctx, {
 *   intervalMs: 30_000, count: 10, failureLimit: 1, consecutiveSuccessLimit: 3,
 * })
 * ```
 */
export interface GateOptions {
  /** Milliseconds between measurements. @default 1000 */
  intervalMs?: number;
  /** Measurements to take per verifier (at most). @default 1 */
  count?: number;
  /** Milliseconds to wait before the first measurement. @default 0 */
  initialDelayMs?: number;
  /** Failed measurements tolerated; one more fails the gate. @default 0 */
  failureLimit?: number;
  /** Inconclusive measurements tolerated; one more makes the gate inconclusive. @default 0 */
  inconclusiveLimit?: number;
  /** Consecutive errors (verifier threw) tolerated; one more makes the gate `error`. @default 4 */
  consecutiveErrorLimit?: number;
  /**
   * Consecutive passes after which a verifier passes early. When set and `count` runs out before it
   * is reached, the verifier ends `inconclusive`. `0` turns it off (take all `count` measurements).
   * @default 0
   */
  consecutiveSuccessLimit?: number;
  /** Verifier names whose verdicts are recorded but never decide the gate. @default [] */
  dryRun?: string[];
  /**
   * Milliseconds one measurement may take before it counts as an `error` (a `TimeoutError`). Long
   * enough for the validation suite with the seed's `TIMEOUT_SECS=120`. @default 120000
   */
  measurementTimeoutMs?: number;
  /**
   * What a failed gate does: `'abort'` ends the release (the strategy's undo runs); `'pause'` holds the
   * release at this step until an operator decides: `promote` continues past the failed gate (journaled
   * as an operator override), `abort` ends it. @default "abort"
   */
  onFail?: 'abort' | 'pause';
  /**
   * What an inconclusive gate does: `'fail'` treats it as failed (then `onFail` applies); `'pause'` holds
   * it for an operator as above; `'pass-after'` passes a gate that ended inconclusive (count ran out
   * before `consecutiveSuccessLimit`, or too many inconclusive measurements) when every deciding
   * verifier passed at least one measurement; a verifier that never had data ("no data") keeps the gate
   * inconclusive, and so failed. @default "fail"
   */
  onInconclusive?: 'pause' | 'fail' | 'pass-after';
}

/** A gate's outcome. `error` means the verifiers could not measure often enough. */
export type GateVerdict = Verdict | 'error';

/** One measurement of one verifier. */
export interface Measurement {
  verifier: string;
  at: string;
  verdict: Verdict | 'error';
  checks: Check[];
  error?: SerializedError;
  dryRun?: boolean;
  /** 0-based round of this measurement within the gate. */
  round?: number;
  /** How long the measurement took, in milliseconds. */
  durationMs?: number;
}

/** The outcome of an `analyze` action: the verdict and every measurement behind it. */
export interface AnalysisResult {
  name: string;
  /** The gate's verdict after its policies (`onInconclusive: 'pass-after'`, an operator's override). */
  verdict: GateVerdict;
  /** What the measurements alone said: pass, fail, inconclusive or error (before any policy). */
  outcome?: GateVerdict;
  /** Set when the gate's policy holds the release for an operator (`onFail`/`onInconclusive: 'pause'`). */
  pause?: boolean;
  /** One line saying why the gate ended as it did. */
  reason: string;
  measurements: Measurement[];
  /** The final verdict of each verifier (`undefined` when the gate stopped before it was decided). */
  verifiers?: Record<string, { verdict: GateVerdict | undefined; reason: string; dryRun: boolean }>;
}

/** One measured check of one gate, as the engine reports it (`analysis.measured`). */
export interface MeasuredCheck {
  /** The gate (analysis) name, e.g. `canary-20` or `verify`. */
  gate: string;
  verifier: string;
  /** 0-based round of the gate. */
  round: number;
  /** The check's name, e.g. `error_rate[v2]` or `errors.sequential`. */
  metric: string;
  /** The pool measured, when the check names one. */
  pool?: string;
  value: string | number | boolean | null;
  limit?: string | number | boolean;
  verdict: Verdict | 'error';
  /** The resolved query or check behind the value. */
  query?: string;
  samples?: number;
  reason: string;
  dryRun?: boolean;
}

/** Hooks a gate calls as it measures (the engine turns them into events and journal entries). */
export interface GateHooks {
  /** Called after every measurement, once per check (or once for a measurement that threw). */
  onMeasured?(check: MeasuredCheck): void | Promise<void>;
}
