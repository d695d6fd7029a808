import { ConfigInvalidError, type GateOptions } from '@codegraph/release-core';

/**
 * One analysis of a blue-green release: which of the engine's verifiers run, and how often.
 *
 * @example
 * ```ts
 * const pre: PromotionAnalysis = { verifiers: ['http-validation'], gate: { count: 3, intervalMs: 2_000 } }
 * ```
 */
export interface PromotionAnalysis {
  /** Names of the engine's verifiers to run. @default every verifier the engine has */
  verifiers?: string[];
  /** When and how often to measure, and what fails the analysis. @default one measurement (core's `gateDefaults`) */
  gate?: GateOptions;
}

/**
 * Options of {@link blueGreen}. Names follow Argo Rollouts' `blueGreen` strategy; durations are in
 * milliseconds, like every duration of the SDK.
 *
 * @example
 * ```ts
 * blueGreen({
 *   prePromotionAnalysis: { gate: { count: 3, intervalMs: 1_000 } },
 *   autoPromotion: false,
 *   scaleDownDelayMs: 60_000,
 * })
 * ```
 */
export interface BlueGreenOptions {
  /**
   * Analysis of the preview colour before any production traffic reaches it, against the preview's own
   * endpoints (the validation suite, metrics). A failure retires the preview; production never saw it.
   * `false` switches it off.
   * @default {} (every verifier of the engine, one measurement)
   */
  prePromotionAnalysis?: PromotionAnalysis | false;
  /**
   * Analysis of the new colour right after the switch, while the old colour is still warm. A failure
   * switches all traffic back to the old colour at once. `false` switches it off.
   * @default {} (every verifier of the engine, one measurement)
   */
  postPromotionAnalysis?: PromotionAnalysis | false;
  /**
   * Switch as soon as the pre-promotion analysis passes. With `false`, the release pauses with the
   * preview ready until `engine.promote(runId)` approves the switch (`{ full: true }` also skips the
   * post-promotion analysis).
   * @default true
   */
  autoPromotion?: boolean;
  /**
   * Milliseconds the old colour keeps running, without traffic, after the switch, so that a rollback
   * (an abort, the engine's emergency rollback) is an instant switch back. `0` retires it at once;
   * `engine.promote(runId)` ends the delay early.
   * @default 30_000
   */
  scaleDownDelayMs?: number;
  /**
   * Milliseconds the new colour keeps running, without traffic, after a switch back (an analysis that
   * failed after the switch, an abort, an emergency rollback), so that it can be inspected. `0` retires
   * it at once; `engine.promote(runId)` ends the delay early. A preview that never had traffic is
   * always retired at once.
   * @default 30_000
   */
  abortScaleDownDelayMs?: number;
}

/** The defaults {@link BlueGreenOptions} documents, in one place. */
export const blueGreenDefaults = Object.freeze({
  autoPromotion: true,
  scaleDownDelayMs: 30_000,
  abortScaleDownDelayMs: 30_000,
});

/** Options with defaults filled in; analyses switched off are `undefined`. */
export interface ResolvedBlueGreen {
  pre: PromotionAnalysis | undefined;
  post: PromotionAnalysis | undefined;
  autoPromotion: boolean;
  scaleDownDelayMs: number;
  abortScaleDownDelayMs: number;
}

const invalid = (field: string, rule: string, value: unknown) =>
  new ConfigInvalidError(`blue-green option ${field} must be ${rule}, got ${show(value)}`, {
    plugin: 'blue-green',
    details: { field },
  });

function show(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function delay(field: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw invalid(field, 'a whole number of milliseconds >= 0', value);
  return value;
}

const gateIntegers: ReadonlyArray<[keyof GateOptions, number]> = [
  ['count', 1],
  ['failureLimit', 0],
  ['inconclusiveLimit', 0],
  ['consecutiveErrorLimit', 0],
  ['consecutiveSuccessLimit', 0],
];
const gateDurations: ReadonlyArray<[keyof GateOptions, boolean]> = [
  ['intervalMs', false],
  ['initialDelayMs', false],
  ['measurementTimeoutMs', true],
];
const gateFields = new Set<string>([...gateIntegers, ...gateDurations].map(([f]) => f).concat('dryRun'));

/** The same rules core's gate applies when it runs, checked when the strategy is made. */
function checkGate(field: string, gate: unknown): asserts gate is GateOptions {
  if (!isRecord(gate)) throw invalid(field, 'an object of gate options', gate);
  for (const key of Object.keys(gate))
    if (!gateFields.has(key)) throw invalid(`${field}.${key}`, 'a known gate option', key);
  for (const [f, min] of gateIntegers) {
    const v = gate[f];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min))
      throw invalid(`${field}.${f}`, `an integer >= ${min}`, v);
  }
  for (const [f, positive] of gateDurations) {
    const v = gate[f];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (positive && v === 0))
      throw invalid(`${field}.${f}`, positive ? 'a number > 0' : 'a finite number >= 0', v);
  }
  const dry = gate.dryRun;
  if (dry !== undefined && (!Array.isArray(dry) || dry.some((n) => typeof n !== 'string')))
    throw invalid(`${field}.dryRun`, 'an array of verifier names', dry);
}

function checkVerifierNames(field: string, names: unknown): asserts names is string[] {
  if (
    !Array.isArray(names) ||
    names.length === 0 ||
    names.some((n) => typeof n !== 'string' || n.trim() === '')
  )
    throw invalid(field, 'a non-empty array of verifier names', names);
}

function analysis(field: string, value: unknown): PromotionAnalysis | undefined {
  if (value === false) return undefined;
  if (value === undefined) return {};
  if (!isRecord(value)) throw invalid(field, 'false or { verifiers?, gate? }', value);
  for (const key of Object.keys(value))
    if (key !== 'verifiers' && key !== 'gate') throw invalid(`${field}.${key}`, 'verifiers or gate', key);
  const { verifiers, gate } = value;
  if (verifiers !== undefined) checkVerifierNames(`${field}.verifiers`, verifiers);
  if (gate !== undefined) checkGate(`${field}.gate`, gate);
  // A copy, so that changing the caller's object later cannot change a plan being replayed.
  return structuredClone({
    ...(verifiers !== undefined ? { verifiers } : {}),
    ...(gate !== undefined ? { gate } : {}),
  });
}

/** Fills defaults and validates; throws {@link ConfigInvalidError} before any release starts. */
export function resolveOptions(options: unknown): ResolvedBlueGreen {
  if (options === undefined) options = {};
  if (!isRecord(options)) throw invalid('options', 'an object', options);
  const known = [
    'prePromotionAnalysis',
    'postPromotionAnalysis',
    'autoPromotion',
    'scaleDownDelayMs',
    'abortScaleDownDelayMs',
  ];
  for (const key of Object.keys(options))
    if (!known.includes(key)) throw invalid(key, `one of ${known.join(', ')}`, key);
  const auto = options.autoPromotion;
  if (auto !== undefined && typeof auto !== 'boolean') throw invalid('autoPromotion', 'a boolean', auto);
  return {
    pre: analysis('prePromotionAnalysis', options.prePromotionAnalysis),
    post: analysis('postPromotionAnalysis', options.postPromotionAnalysis),
    autoPromotion: auto ?? blueGreenDefaults.autoPromotion,
    scaleDownDelayMs: delay('scaleDownDelayMs', options.scaleDownDelayMs, blueGreenDefaults.scaleDownDelayMs),
    abortScaleDownDelayMs: delay(
      'abortScaleDownDelayMs',
      options.abortScaleDownDelayMs,
      blueGreenDefaults.abortScaleDownDelayMs,
    ),
  };
}
