import { ConfigInvalidError, type GateOptions } from '@codegraph/release-core';

/** Send `setWeight` percent of traffic (an integer 0..100) to the canary; the stable pool keeps the rest. */
export interface SetWeightStep {
  setWeight: number;
}

/** Wait `durationMs`, or, without it, until an operator approves through `engine.promote(runId)`. */
export interface PauseStep {
  pause: {
    /** Milliseconds to wait. @default undefined (wait for an approval) */
    durationMs?: number;
  };
}

/** Run an analysis gate over the engine's verifiers named here, against the canary (and the baseline). */
export interface AnalysisStep {
  analysis: {
    /** Names of the engine's verifiers to run; at least one. */
    verifiers: string[];
    /** Argo Rollouts gate semantics: interval, count, limits. @default one measurement */
    gate?: GateOptions;
    /** Shown in logs and reports. @default `canary-<weight>` (the weight at that point) */
    name?: string;
  };
}

/**
 * Size the canary pool independently of its traffic: a replica count, a percentage of the full size,
 * or back to matching the traffic weight (the default).
 */
export interface SetCanaryScaleStep {
  setCanaryScale: { replicas: number } | { weight: number } | { matchTrafficWeight: true };
}

/** One step of a canary, in Argo Rollouts' vocabulary. */
export type CanaryStep = SetWeightStep | PauseStep | AnalysisStep | SetCanaryScaleStep;

/**
 * Options of {@link canary}. Give at most one of `steps`, `weights` or `stepWeight`/`maxWeight`;
 * with none, the canary goes 10, 20, 30, 40, 50 % (the linear defaults).
 */
export interface CanaryOptions {
  /** The exact steps, in order. */
  steps?: CanaryStep[];
  /** Shorthand: these weights in turn (strictly increasing, 0..100), each followed by `pause` and `analysis`. */
  weights?: number[];
  /** Shorthand for a linear rollout: weights `stepWeight`, `2·stepWeight`, … up to `maxWeight`. @default 10 */
  stepWeight?: number;
  /** Highest weight of the linear shorthand; the canary is promoted after it. @default 50 */
  maxWeight?: number;
  /** With a shorthand: the analysis run after each weight (and after its pause). @default none */
  analysis?: AnalysisStep['analysis'];
  /** With a shorthand: the pause after each weight. @default none */
  pause?: PauseStep['pause'];
  /**
   * Run a baseline pool of the stable version beside the canary, at the canary's weight and size, so a
   * judge compares two fresh pools under the same traffic. Weights then go up to 50 at most.
   * @default false
   */
  baseline?: boolean;
  /** The strategy's name in logs and plans. @default 'canary' */
  name?: string;
}

/** The defaults {@link CanaryOptions} documents, in one place. */
export const canaryDefaults = Object.freeze({
  stepWeight: 10,
  maxWeight: 50,
  baseline: false,
  name: 'canary',
});

const bad = (message: string, field: string) =>
  new ConfigInvalidError(`canary: ${message}`, { plugin: 'canary', details: { field } });

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

function checkPause(p: unknown, where: string): void {
  if (typeof p !== 'object' || p === null)
    throw bad(`${where}: pause must be an object like { durationMs: 30000 } or {}`, 'pause');
  const d = (p as { durationMs?: unknown }).durationMs;
  if (d !== undefined && !(typeof d === 'number' && Number.isFinite(d) && d >= 0)) {
    throw bad(
      `${where}: pause.durationMs must be a number of milliseconds >= 0, got ${JSON.stringify(d)}`,
      'pause',
    );
  }
}

function checkAnalysis(a: unknown, where: string): void {
  const v = (a as { verifiers?: unknown } | null)?.verifiers;
  if (!Array.isArray(v) || v.length === 0 || !v.every((n) => typeof n === 'string' && n !== '')) {
    throw bad(
      `${where}: analysis must name at least one verifier, e.g. { verifiers: ['judge'] }`,
      'analysis',
    );
  }
  const g = (a as { gate?: unknown }).gate;
  if (g !== undefined) {
    checkGate(g, where);
    const dry = ((g as { dryRun?: string[] }).dryRun ?? []).filter((n) => !v.includes(n));
    if (dry.length > 0)
      throw bad(`${where}: gate.dryRun names verifiers the analysis does not run: ${dry.join(', ')}`, 'gate');
  }
  const name = (a as { name?: unknown }).name;
  if (name !== undefined && (typeof name !== 'string' || name === ''))
    throw bad(`${where}: analysis.name must be a non-empty string`, 'analysis');
}

function checkGate(g: unknown, where: string): void {
  if (typeof g !== 'object' || g === null) throw bad(`${where}: analysis.gate must be an object`, 'gate');
  const o = g as Record<string, unknown>;
  const counts: Array<[string, number]> = [
    ['count', 1],
    ['failureLimit', 0],
    ['inconclusiveLimit', 0],
    ['consecutiveErrorLimit', 0],
    ['consecutiveSuccessLimit', 0],
  ];
  for (const [field, min] of counts) {
    const v = o[field];
    if (v !== undefined && !(isInt(v) && v >= min)) {
      throw bad(`${where}: gate.${field} must be an integer >= ${min}, got ${JSON.stringify(v)}`, 'gate');
    }
  }
  for (const field of ['intervalMs', 'initialDelayMs', 'measurementTimeoutMs']) {
    const v = o[field];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) {
      throw bad(
        `${where}: gate.${field} must be a number of milliseconds >= 0, got ${JSON.stringify(v)}`,
        'gate',
      );
    }
  }
  if (o.onFail !== undefined && o.onFail !== 'abort' && o.onFail !== 'pause')
    throw bad(`${where}: gate.onFail must be 'abort' or 'pause', got ${JSON.stringify(o.onFail)}`, 'gate');
  if (o.onInconclusive !== undefined && !['pause', 'fail', 'pass-after'].includes(o.onInconclusive as string))
    throw bad(
      `${where}: gate.onInconclusive must be 'pause', 'fail' or 'pass-after', got ${JSON.stringify(o.onInconclusive)}`,
      'gate',
    );
  if (o.dryRun !== undefined && !(Array.isArray(o.dryRun) && o.dryRun.every((n) => typeof n === 'string'))) {
    throw bad(`${where}: gate.dryRun must list verifier names`, 'gate');
  }
}

function checkScale(s: unknown, where: string): void {
  const o = (s ?? {}) as Record<string, unknown>;
  const keys = Object.keys(o);
  const ok =
    keys.length === 1 &&
    ((isInt(o.replicas) && o.replicas >= 1) ||
      (isInt(o.weight) && o.weight >= 1 && o.weight <= 100) ||
      o.matchTrafficWeight === true);
  if (!ok) {
    throw bad(
      `${where}: setCanaryScale must be one of { replicas: n >= 1 }, { weight: 1..100 } or { matchTrafficWeight: true }`,
      'setCanaryScale',
    );
  }
}

function linear(stepWeight: unknown, maxWeight: unknown): number[] {
  if (!isInt(stepWeight) || stepWeight < 1 || stepWeight > 100) {
    throw bad(`stepWeight must be an integer 1..100, got ${JSON.stringify(stepWeight)}`, 'stepWeight');
  }
  if (!isInt(maxWeight) || maxWeight < 1 || maxWeight > 100) {
    throw bad(`maxWeight must be an integer 1..100, got ${JSON.stringify(maxWeight)}`, 'maxWeight');
  }
  if (maxWeight < stepWeight)
    throw bad(`maxWeight (${maxWeight}) must be at least stepWeight (${stepWeight})`, 'maxWeight');
  const out: number[] = [];
  for (let w = stepWeight; w <= maxWeight; w += stepWeight) out.push(w);
  return out;
}

function shorthand(weights: number[], o: CanaryOptions): CanaryStep[] {
  const steps: CanaryStep[] = [];
  for (const w of weights) {
    steps.push({ setWeight: w });
    if (o.pause) steps.push({ pause: { ...o.pause } });
    if (o.analysis) steps.push({ analysis: { ...o.analysis } });
  }
  return steps;
}

/** What {@link resolveCanary} returns: the steps to run and the settings, all checked. */
export interface ResolvedCanary {
  name: string;
  baseline: boolean;
  steps: CanaryStep[];
}

/**
 * Checks options and expands shorthands into steps. Every problem is a `ConfigInvalidError`
 * (`CG_CONFIG_INVALID`) thrown here, when the strategy is made, before any release.
 */
export function resolveCanary(options: CanaryOptions = {}): ResolvedCanary {
  if (typeof options !== 'object' || options === null) throw bad('options must be an object', 'options');
  const known = ['steps', 'weights', 'stepWeight', 'maxWeight', 'analysis', 'pause', 'baseline', 'name'];
  for (const k of Object.keys(options)) if (!known.includes(k)) throw bad(`unknown option "${k}"`, k);
  const o = options;
  const given = [
    o.steps !== undefined,
    o.weights !== undefined,
    o.stepWeight !== undefined || o.maxWeight !== undefined,
  ];
  if (given.filter(Boolean).length > 1)
    throw bad('give one of steps, weights or stepWeight/maxWeight', 'steps');
  if (o.steps !== undefined && (o.analysis !== undefined || o.pause !== undefined)) {
    throw bad(
      'analysis and pause apply to the weights/stepWeight shorthands; with steps, list them as steps',
      'steps',
    );
  }
  if (o.analysis !== undefined) checkAnalysis(o.analysis, 'analysis');
  if (o.pause !== undefined) checkPause(o.pause, 'pause');
  const name = o.name ?? canaryDefaults.name;
  if (typeof name !== 'string' || name === '') throw bad('name must be a non-empty string', 'name');
  const baseline = o.baseline ?? canaryDefaults.baseline;
  if (typeof baseline !== 'boolean') throw bad('baseline must be true or false', 'baseline');

  let steps: CanaryStep[];
  if (o.steps !== undefined) {
    if (!Array.isArray(o.steps) || o.steps.length === 0)
      throw bad('steps must be a non-empty array', 'steps');
    steps = o.steps.map((s) => ({ ...s }));
  } else if (o.weights !== undefined) {
    if (!Array.isArray(o.weights) || o.weights.length === 0)
      throw bad('weights must be a non-empty array', 'weights');
    steps = shorthand(o.weights, o);
  } else {
    steps = shorthand(
      linear(o.stepWeight ?? canaryDefaults.stepWeight, o.maxWeight ?? canaryDefaults.maxWeight),
      o,
    );
  }

  let last = -1;
  for (const [i, step] of steps.entries()) {
    const where = `step ${i + 1}`;
    const keys = typeof step === 'object' && step !== null ? Object.keys(step) : [];
    if (keys.length !== 1)
      throw bad(`${where} must have exactly one of setWeight, pause, analysis, setCanaryScale`, 'steps');
    const s = step as unknown as Record<string, unknown>;
    if ('setWeight' in s) {
      const w = s.setWeight;
      if (!isInt(w) || w < 0 || w > 100)
        throw bad(`${where}: weight must be an integer 0..100, got ${JSON.stringify(w)}`, 'weights');
      if (w <= last) throw bad(`${where}: weights must increase, but ${w} follows ${last}`, 'weights');
      if (baseline && w > 50)
        throw bad(
          `${where}: with a baseline, weights go up to 50 (canary and baseline each take ${w}%)`,
          'weights',
        );
      last = w;
    } else if ('pause' in s) checkPause(s.pause, where);
    else if ('analysis' in s) checkAnalysis(s.analysis, where);
    else if ('setCanaryScale' in s) checkScale(s.setCanaryScale, where);
    else throw bad(`${where}: unknown step "${keys[0]}"`, 'steps');
  }
  return { name, baseline, steps };
}
