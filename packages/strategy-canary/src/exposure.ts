import { type Action, type GateOptions, gateDefaults, type Plan } from '@codegraph/release-core';
import { type CanaryOptions, type CanaryStep, resolveCanary } from './options.js';

/** A dry run's actions, as `engine.plan({ version })` returns them. */
export type PlannedRelease = Pick<Plan, 'version' | 'actions'>;

/** How long a canary that turns bad at one weight step stays exposed before the abort decision. */
export interface ExposureStage {
  /** 0-based index, in the expanded steps, of the `setWeight` step where the canary turns bad. */
  step: number;
  /** The weight set by that step, in percent. */
  weight: number;
  /**
   * Worst-case milliseconds from the canary's first bad request to the abort decision: timed pauses plus
   * the catching gate's time to fail. `Infinity` when a pause waits for an approval first, or no
   * analysis comes before promotion (see `caughtBy`).
   */
  detectMs: number;
  /** Highest weight (percent) the bad canary reaches before the decision. */
  exposedWeight: number;
  /** Share (0..1) of all requests the bad canary takes between its first bad request and the decision. */
  exposedShare: number;
  /** The analysis that catches it, `'approval'` when a pause waits for an operator first, `'none'` when nothing does. */
  caughtBy: string;
}

/** Worst cases over every stage; see {@link canaryExposure}. */
export interface CanaryExposure {
  /** Worst-case milliseconds to detect a bad canary (the maximum over stages). */
  detectMs: number;
  /** Worst-case weight (percent) a bad canary reaches before the abort decision. */
  exposedWeight: number;
  /** Worst-case share (0..1) of all requests a bad canary takes before the abort decision. */
  exposedShare: number;
  stages: ExposureStage[];
}

/** What {@link canaryExposure} assumes about measurements. */
export interface ExposureAssumptions {
  /** Milliseconds one measurement takes (a Prometheus query, a judge's read of the traffic). @default 0 */
  measurementMs?: number;
}

/**
 * Worst-case time for a gate to fail a canary whose every measurement fails: it fails after
 * `min(failureLimit + 1, count)` failed measurements, the first after `initialDelayMs`, then one per
 * `intervalMs`. `undefined` when every verifier of the gate is a dry run (it can never fail).
 */
export function gateFailMs(
  gate: GateOptions | undefined,
  verifiers: readonly string[],
  measurementMs = 0,
): number | undefined {
  const g = { ...gateDefaults, ...gate };
  if (verifiers.every((v) => g.dryRun.includes(v))) return undefined;
  const k = Math.min(g.failureLimit + 1, g.count);
  return g.initialDelayMs + (k - 1) * g.intervalMs + k * measurementMs;
}

/** The exposure of already-checked steps (what {@link canaryExposure} computes after validation). */
export function exposureOf(
  steps: readonly CanaryStep[],
  assumptions: ExposureAssumptions = {},
): CanaryExposure {
  const measurementMs = assumptions.measurementMs ?? 0;
  const stages: ExposureStage[] = [];
  for (const [start, first] of steps.entries()) {
    if (!('setWeight' in first) || first.setWeight === 0) continue;
    let weight = first.setWeight;
    let t = 0;
    let area = 0; // ∫ weight dt, in percent·ms
    let caughtBy = 'none';
    let exposedWeight = weight;
    for (const step of steps.slice(start + 1)) {
      if ('setWeight' in step) {
        weight = step.setWeight;
        exposedWeight = Math.max(exposedWeight, weight);
      } else if ('pause' in step) {
        if (step.pause.durationMs === undefined) {
          caughtBy = 'approval';
          break;
        }
        t += step.pause.durationMs;
        area += weight * step.pause.durationMs;
      } else if ('analysis' in step) {
        const ms = gateFailMs(step.analysis.gate, step.analysis.verifiers, measurementMs);
        if (ms === undefined) continue;
        t += ms;
        area += weight * ms;
        caughtBy = step.analysis.name ?? `canary-${weight}`;
        break;
      }
    }
    const caught = caughtBy !== 'none' && caughtBy !== 'approval';
    stages.push({
      step: start,
      weight: first.setWeight,
      detectMs: caught ? t : Number.POSITIVE_INFINITY,
      exposedWeight: caught ? exposedWeight : 100,
      exposedShare: caught ? (t === 0 ? weight : area / t) / 100 : 1,
      caughtBy,
    });
  }
  const worst = (f: (s: ExposureStage) => number) => stages.reduce((m, s) => Math.max(m, f(s)), 0);
  return {
    detectMs: worst((s) => s.detectMs),
    exposedWeight: worst((s) => s.exposedWeight),
    exposedShare: worst((s) => s.exposedShare),
    stages,
  };
}

/**
 * Worst-case time to detect a bad canary and worst-case share of traffic it takes, computed from the
 * steps and gate settings alone (pure: no target, no clock): from canary options, or from the actions of
 * a dry run, `canaryExposure(await engine.plan({ version }))` (weights of the version's pools, pauses and
 * analyses up to promotion).
 *
 * The model: the canary turns bad at some `setWeight` step (each is a stage) and from then on every
 * measurement fails. It is caught by the next analysis whose gate can fail, after that gate's
 * `initialDelayMs + (min(failureLimit + 1, count) − 1) · intervalMs` (plus `measurementMs` per
 * measurement); timed pauses before it add their duration, and weights raised before it count toward the
 * exposure. A pause that waits for an approval, or promotion with no analysis in between, means the
 * strategy alone never catches it: that stage's `detectMs` is `Infinity` and its exposure is the whole
 * traffic. The result holds the worst stage's figures and every stage's.
 *
 * Not counted: the time a metrics pipeline needs before a bad request is visible (a Prometheus scrape
 * interval, say); add it to `measurementMs`.
 *
 * @example
 * ```ts
 * const e = canaryExposure({ weights: [5, 25, 50], analysis: { verifiers: ['judge'], gate: { count: 5, intervalMs: 2000, initialDelayMs: 2000 } } })
 * // e.detectMs === 2000, e.exposedWeight === 50, e.exposedShare === 0.5
 * const planned = canaryExposure(await engine.plan({ version: 'v1.2.3' }))
 * ```
 */
export function canaryExposure(
  source: CanaryOptions | PlannedRelease = {},
  assumptions: ExposureAssumptions = {},
): CanaryExposure {
  if ('actions' in source && Array.isArray(source.actions))
    return exposureOf(stepsOfPlan(source), assumptions);
  return exposureOf(resolveCanary(source as CanaryOptions).steps, assumptions);
}

/** The canary steps a dry run's actions amount to, up to promotion: weights of the version's pools, pauses, analyses. */
function stepsOfPlan(plan: PlannedRelease): CanaryStep[] {
  const pools = new Set(
    plan.actions.flatMap((a: Action) =>
      a.type === 'provision' && a.version === plan.version ? [a.pool] : [],
    ),
  );
  // The route just before `promote` sends all traffic over: that is the promotion, not a canary step.
  const promoted = plan.actions.findIndex((a) => a.type === 'promote');
  const until =
    promoted < 0
      ? plan.actions.length
      : plan.actions.slice(0, promoted).findLastIndex((a) => a.type === 'route');
  const steps: CanaryStep[] = [];
  let weight = 0;
  for (const a of plan.actions.slice(0, until < 0 ? promoted : until)) {
    if (a.type === 'route') {
      const w = Object.entries(a.weights).reduce((sum, [pool, v]) => sum + (pools.has(pool) ? v : 0), 0);
      if (w !== weight) steps.push({ setWeight: w });
      weight = w;
    } else if (a.type === 'pause') {
      steps.push({ pause: a.durationMs === undefined ? {} : { durationMs: a.durationMs } });
    } else if (a.type === 'analyze') {
      // No verifier list means every verifier of the engine: none of them is named in a dry run list.
      const verifiers = a.verifiers ?? ['*'];
      steps.push({ analysis: { verifiers, name: a.name, ...(a.gate ? { gate: a.gate } : {}) } });
    }
  }
  return steps;
}
