import { AbortedError, ConfigInvalidError, serializeError } from '../errors.js';
import type {
  AnalysisResult,
  Check,
  GateHooks,
  GateOptions,
  GateVerdict,
  MeasuredCheck,
  Measurement,
  Verifier,
  VerifierResult,
  VerifyContext,
} from './types.js';
import { sleep, withDeadline } from './wait.js';

/**
 * The values {@link GateOptions} documents as its defaults (one place: read them, never repeat them).
 *
 * @example
 * ```ts
 * const checks = options.count ?? gateDefaults.count
 * ```
 */
export const gateDefaults: Readonly<Required<GateOptions>> = Object.freeze({
  intervalMs: 1000,
  count: 1,
  initialDelayMs: 0,
  failureLimit: 0,
  inconclusiveLimit: 0,
  consecutiveErrorLimit: 4,
  consecutiveSuccessLimit: 0,
  dryRun: [] as string[],
  measurementTimeoutMs: 120_000,
  onFail: 'abort' as 'abort' | 'pause',
  onInconclusive: 'fail' as 'pause' | 'fail' | 'pass-after',
});

/** Worst first: a gate's verdict is the worst verdict of the verifiers that decide it. */
const severity: Record<GateVerdict, number> = { fail: 3, error: 2, inconclusive: 1, pass: 0 };

interface VerifierState {
  verifier: Verifier;
  dryRun: boolean;
  passes: number;
  failures: number;
  inconclusives: number;
  errors: number;
  consecutiveErrors: number;
  consecutiveSuccesses: number;
  verdict: GateVerdict | undefined;
  reason: string;
}

/**
 * Runs verifiers under Argo Rollouts' analysis semantics and returns the gate's verdict with every
 * measurement (each check records its resolved query and observed value).
 *
 * Every verifier is measured up to `count` times, `intervalMs` apart, after `initialDelayMs`. A verifier
 * ends `fail` after `failureLimit + 1` failed measurements, `inconclusive` after `inconclusiveLimit + 1`
 * inconclusive ones, `error` after `consecutiveErrorLimit + 1` errors in a row (or one error that
 * retrying cannot fix), and `pass` early after `consecutiveSuccessLimit` passes in a row. When `count`
 * runs out it passes only if at least one measurement passed (and, with `consecutiveSuccessLimit`, only if
 * that limit was reached; otherwise `inconclusive`). A verifier that never passed ends with the worst
 * verdict it saw. The gate's verdict is the worst of its non-dry-run verifiers
 * (`fail` > `error` > `inconclusive` > `pass`); it stops as soon as that is decided.
 *
 * Bad options throw {@link ConfigInvalidError} before anything is measured; `ctx.signal` aborting
 * throws {@link AbortedError} from any wait or measurement.
 *
 * @example
 * ```ts
 * const result = await runGate('canary-20', [httpValidation(), proxyAnalysis()], ctx, { count: 5, intervalMs: 10_000 })
 * if (result.verdict !== 'pass') throw new AnalysisFailedError(result.reason)
 * ```
 */
export async function runGate(
  name: string,
  verifiers: readonly Verifier[],
  ctx: VerifyContext,
  options: GateOptions = {},
  hooks: GateHooks = {},
): Promise<AnalysisResult> {
  const opts = resolveGateOptions(verifiers, options);
  const signal = ctx.signal;
  const log = ctx.logger;
  const states: VerifierState[] = verifiers.map((verifier) => ({
    verifier,
    dryRun: opts.dryRun.includes(verifier.name),
    passes: 0,
    failures: 0,
    inconclusives: 0,
    errors: 0,
    consecutiveErrors: 0,
    consecutiveSuccesses: 0,
    verdict: undefined,
    reason: 'not decided',
  }));
  const measurements: Measurement[] = [];
  const deciding = states.filter((s) => !s.dryRun);

  await sleep(opts.initialDelayMs, signal, `analysis ${name}`);
  for (let round = 0; round < opts.count; round++) {
    const active = states.filter((s) => s.verdict === undefined);
    const taken = await Promise.all(active.map((s) => measure(s, round, ctx, opts.measurementTimeoutMs)));
    if (signal?.aborted) throw new AbortedError(`analysis ${name} was cancelled`, { cause: signal.reason });
    for (const [i, m] of taken.entries()) {
      measurements.push(m);
      decide(active[i]!, m, opts);
      if (hooks.onMeasured) for (const c of measuredChecks(name, m)) await hooks.onMeasured(c);
      log?.debug(`analysis ${name}: ${m.verifier} measured ${m.verdict}`, { round, dryRun: m.dryRun });
    }
    const decided = deciding.length > 0 && deciding.every((s) => s.verdict !== undefined);
    const lost = deciding.find((s) => s.verdict !== undefined && s.verdict !== 'pass');
    if (lost) {
      // The gate cannot pass any more: the others stop undecided, as Argo terminates the run's metrics.
      for (const s of states.filter((x) => x.verdict === undefined)) {
        s.reason = `stopped undecided: ${lost.verifier.name} ended the gate ${lost.verdict}`;
      }
      break;
    }
    if (decided) break;
    if (round < opts.count - 1) await sleep(opts.intervalMs, signal, `analysis ${name}`);
  }
  for (const s of states) if (s.verdict === undefined && s.reason === 'not decided') conclude(s, opts);
  return applyPolicy(summarize(name, states, deciding, measurements, log), deciding, opts);
}

/** The gate's policies: `onInconclusive` and `onFail` turn the measured outcome into the gate's verdict. */
function applyPolicy(
  result: AnalysisResult,
  deciding: VerifierState[],
  opts: Required<GateOptions>,
): AnalysisResult {
  const outcome = result.verdict;
  const out: AnalysisResult = { ...result, outcome };
  if (outcome === 'inconclusive') {
    if (opts.onInconclusive === 'pass-after' && deciding.every((s) => s.passes > 0)) {
      return {
        ...out,
        verdict: 'pass',
        reason: `passed after an inconclusive end (onInconclusive: pass-after; every verifier passed at least once): ${result.reason}`,
      };
    }
    if (opts.onInconclusive === 'pause') return { ...out, pause: true };
    if (opts.onInconclusive === 'fail' && opts.onFail === 'pause') return { ...out, pause: true };
    return out;
  }
  if ((outcome === 'fail' || outcome === 'error') && opts.onFail === 'pause') return { ...out, pause: true };
  return out;
}

/** One entry per check of a measurement (one for a measurement that threw), for `analysis.measured`. */
function measuredChecks(gate: string, m: Measurement): MeasuredCheck[] {
  const common = { gate, verifier: m.verifier, round: m.round ?? 0, ...(m.dryRun ? { dryRun: true } : {}) };
  if (m.checks.length === 0) {
    return [
      {
        ...common,
        metric: m.verifier,
        value: null,
        verdict: m.verdict,
        reason: m.error ? `${m.error.code}: ${m.error.message}` : `no checks (${m.verdict})`,
      },
    ];
  }
  return m.checks.map((c) => ({
    ...common,
    metric: c.name,
    ...(c.pool !== undefined ? { pool: c.pool } : poolOf(c.name)),
    value: c.observed,
    ...(c.threshold !== undefined ? { limit: c.threshold } : {}),
    verdict: c.verdict,
    ...(c.query !== undefined ? { query: c.query } : {}),
    ...(c.samples !== undefined ? { samples: c.samples } : {}),
    reason: c.reason,
  }));
}

/** `error_rate[v2]` names pool `v2`. */
function poolOf(check: string): { pool?: string } {
  const m = /\[([^\]]+)\]$/.exec(check);
  return m ? { pool: m[1]! } : {};
}

/** Validates options against the verifiers and fills defaults; throws before any measurement. */
function resolveGateOptions(verifiers: readonly Verifier[], options: GateOptions): Required<GateOptions> {
  const opts = { ...gateDefaults, ...stripUndefined(options) };
  const bad = (field: string, rule: string, value: unknown) =>
    new ConfigInvalidError(`gate option ${field} must be ${rule}, got ${JSON.stringify(value)}`, {
      details: { field },
    });
  const integers: Array<[keyof GateOptions, number]> = [
    ['count', 1],
    ['failureLimit', 0],
    ['inconclusiveLimit', 0],
    ['consecutiveErrorLimit', 0],
    ['consecutiveSuccessLimit', 0],
  ];
  for (const [field, min] of integers) {
    const v = opts[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw bad(field, `an integer >= ${min}`, v);
  }
  for (const field of ['intervalMs', 'initialDelayMs'] as const) {
    const v = opts[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw bad(field, 'a finite number >= 0', v);
  }
  if (!['abort', 'pause'].includes(opts.onFail)) throw bad('onFail', "'abort' or 'pause'", opts.onFail);
  if (!['pause', 'fail', 'pass-after'].includes(opts.onInconclusive))
    throw bad('onInconclusive', "'pause', 'fail' or 'pass-after'", opts.onInconclusive);
  const t = opts.measurementTimeoutMs;
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0)
    throw bad('measurementTimeoutMs', 'a number > 0', t);
  if (verifiers.length === 0) {
    throw new ConfigInvalidError('a gate needs at least one verifier: an analysis without data never passes');
  }
  const names = verifiers.map((v) => v.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new ConfigInvalidError(`two verifiers of one gate are both named "${dup}"`);
  if (!Array.isArray(opts.dryRun)) throw bad('dryRun', 'an array of verifier names', opts.dryRun);
  const unknown = opts.dryRun.filter((n) => !names.includes(n));
  if (unknown.length > 0) {
    throw new ConfigInvalidError(
      `dryRun names unknown verifiers: ${unknown.join(', ')} (have: ${names.join(', ')})`,
    );
  }
  return opts;
}

function stripUndefined(options: GateOptions): GateOptions {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as GateOptions;
}

async function measure(
  s: VerifierState,
  round: number,
  ctx: VerifyContext,
  timeoutMs: number,
): Promise<Measurement> {
  const at = new Date().toISOString();
  const started = performance.now();
  const base = { verifier: s.verifier.name, at, round, ...(s.dryRun ? { dryRun: true } : {}) };
  try {
    const result: VerifierResult = await withDeadline(
      (signal) => s.verifier.verify({ ...ctx, signal }),
      timeoutMs,
      ctx.signal,
      `verifier ${s.verifier.name}`,
    );
    return { ...base, verdict: result.verdict, checks: result.checks, durationMs: elapsed(started) };
  } catch (err) {
    if (ctx.signal?.aborted)
      throw err instanceof AbortedError ? err : new AbortedError('analysis was cancelled');
    return {
      ...base,
      verdict: 'error',
      checks: [],
      error: serializeError(err),
      durationMs: elapsed(started),
    };
  }
}

const elapsed = (started: number) => Math.round((performance.now() - started) * 10) / 10;

/** Counts one measurement and decides the verifier when a limit is crossed. */
function decide(s: VerifierState, m: Measurement, opts: Required<GateOptions>): void {
  if (m.verdict === 'pass') {
    s.passes++;
    s.consecutiveSuccesses++;
    s.consecutiveErrors = 0;
  } else {
    s.consecutiveSuccesses = 0;
    if (m.verdict === 'error') {
      s.errors++;
      s.consecutiveErrors++;
    } else {
      s.consecutiveErrors = 0;
      if (m.verdict === 'fail') s.failures++;
      else s.inconclusives++;
    }
  }
  const permanent = m.verdict === 'error' && m.error?.retryable === false;
  if (permanent || s.consecutiveErrors > opts.consecutiveErrorLimit) {
    s.verdict = 'error';
    s.reason = permanent
      ? `${m.error?.code}: ${m.error?.message} (retrying cannot fix it)`
      : `${s.consecutiveErrors} errors in a row > consecutiveErrorLimit ${opts.consecutiveErrorLimit}: ${m.error?.message}`;
  } else if (s.failures > opts.failureLimit) {
    s.verdict = 'fail';
    s.reason = `${s.failures} failed measurements > failureLimit ${opts.failureLimit}: ${firstBad(m)}`;
  } else if (s.inconclusives > opts.inconclusiveLimit) {
    s.verdict = 'inconclusive';
    s.reason = `${s.inconclusives} inconclusive measurements > inconclusiveLimit ${opts.inconclusiveLimit}: ${firstBad(m)}`;
  } else if (opts.consecutiveSuccessLimit > 0 && s.consecutiveSuccesses >= opts.consecutiveSuccessLimit) {
    s.verdict = 'pass';
    s.reason = `${s.consecutiveSuccesses} passes in a row reached consecutiveSuccessLimit`;
  }
}

/**
 * The check that made a measurement what it is: a failed check for a failed measurement (never an
 * inconclusive neighbour), with its value, limit and sample size.
 */
function firstBad(m: Measurement): string {
  const check = m.checks.find((c) => c.verdict === m.verdict) ?? m.checks.find((c) => c.verdict !== 'pass');
  return check ? describeCheck(check) : m.verdict;
}

function describeCheck(c: Check): string {
  const facts = [
    `value ${c.observed === null ? 'none' : c.observed}`,
    c.threshold !== undefined ? `limit ${c.threshold}` : undefined,
    c.samples !== undefined ? `n=${c.samples}` : undefined,
  ].filter(Boolean);
  return `${c.name} ${c.verdict} (${facts.join(', ')}): ${c.reason}`;
}

/** Decides a verifier whose measurements ran out without crossing a limit. */
function conclude(s: VerifierState, opts: Required<GateOptions>): void {
  const taken = s.passes + s.failures + s.inconclusives + s.errors;
  if (opts.consecutiveSuccessLimit > 0) {
    s.verdict = 'inconclusive';
    s.reason = `count ${opts.count} ran out before ${opts.consecutiveSuccessLimit} passes in a row`;
  } else if (s.passes > 0) {
    s.verdict = 'pass';
    s.reason = `${s.passes}/${taken} measurements passed within the limits`;
  } else {
    s.verdict = s.failures > 0 ? 'fail' : s.errors > 0 ? 'error' : 'inconclusive';
    s.reason = `no measurement passed (${s.failures} failed, ${s.inconclusives} inconclusive, ${s.errors} errors)`;
  }
}

function summarize(
  name: string,
  states: VerifierState[],
  deciding: VerifierState[],
  measurements: Measurement[],
  log: VerifyContext['logger'],
): AnalysisResult {
  const verifiers = Object.fromEntries(
    states.map((s) => [s.verifier.name, { verdict: s.verdict, reason: s.reason, dryRun: s.dryRun }]),
  );
  for (const s of states.filter((x) => x.dryRun && x.verdict !== 'pass' && x.verdict !== undefined)) {
    log?.warn(`analysis ${name}: dry-run verifier ${s.verifier.name} ended ${s.verdict}`, {
      reason: s.reason,
    });
  }
  if (deciding.length === 0) {
    return {
      name,
      verdict: 'pass',
      reason: 'every verifier is in dry run: nothing can fail this gate',
      measurements,
      verifiers,
    };
  }
  let worst: VerifierState | undefined;
  for (const s of deciding) {
    if (s.verdict === undefined) continue;
    if (!worst || severity[s.verdict] > severity[worst.verdict!]) worst = s;
  }
  const verdict = worst?.verdict ?? 'inconclusive';
  const reason =
    verdict === 'pass'
      ? `every verifier passed (${deciding.map((s) => s.verifier.name).join(', ')})`
      : `${worst!.verifier.name}: ${worst!.reason}`;
  log?.info(`analysis ${name}: ${verdict}`, { reason });
  return { name, verdict, reason, measurements, verifiers };
}
