import type { AnalysisResult, GateOptions } from '../analysis/types.js';
import type { PoolState, TargetState, Weights } from '../target/types.js';

/** Make `pool` run `replicas` replicas of `version`. Outcome: the pool's {@link PoolState}. */
export interface ProvisionAction {
  type: 'provision';
  pool: string;
  version: string;
  replicas: number;
}
/** Set traffic weights (percent per pool). Outcome: the weights applied. */
export interface RouteAction {
  type: 'route';
  weights: Weights;
}
/** Run an analysis gate over the verifiers against some pools. Outcome: an {@link AnalysisResult}. */
export interface AnalyzeAction {
  type: 'analyze';
  /** Shown in logs and reports, e.g. `batch-2` or `canary-20`. */
  name: string;
  /** Pools under test; their endpoints are what verifiers check. Default: every pool with traffic. */
  pools?: string[];
  /** Names of the engine's verifiers to run; default all. */
  verifiers?: string[];
  /** Gate semantics (interval, count, limits). Default: one measurement. */
  gate?: GateOptions;
}
/** Wait a duration, or until approved through `engine.promote(runId)`. Outcome: a {@link PauseOutcome}. */
export interface PauseAction {
  type: 'pause';
  /** Milliseconds to wait; without it, wait for an approval. */
  durationMs?: number;
  reason?: string;
}
/** Record `pool` as the environment's stable pool. Outcome: `{ pool, version }`. */
export interface PromoteAction {
  type: 'promote';
  pool: string;
}
/** Stop a pool that receives no traffic. Outcome: `{ pool }`. */
export interface RetireAction {
  type: 'retire';
  pool: string;
}

/** The steps a strategy asks the engine to take. */
export type Action =
  | ProvisionAction
  | RouteAction
  | AnalyzeAction
  | PauseAction
  | PromoteAction
  | RetireAction;

/** How a pause ended. */
export interface PauseOutcome {
  resumedBy: 'timer' | 'approval' | 'skip';
  /** Set when the approval asked to skip every remaining step and promote fully (`engine.promote(id, { full: true })`). */
  full?: boolean;
}

/** The outcome the engine feeds back for each action type. */
export interface ActionOutcomes {
  provision: PoolState;
  route: { weights: Weights };
  analyze: AnalysisResult;
  pause: PauseOutcome;
  promote: { pool: string; version: string };
  retire: { pool: string };
}

/** The outcome of any action. */
export type ActionOutcome = ActionOutcomes[keyof ActionOutcomes];

/** What a strategy knows when it plans a release: where the target stands and what is wanted. */
export interface StrategyInput {
  /** The version to release. */
  version: string;
  /** The pool serving the stable version, if any (none on a first release). */
  stable: PoolState | undefined;
  /** Every pool the target reports. */
  state: TargetState;
  /** Replicas the environment runs at full size. */
  replicas: number;
}

/** What a strategy knows when it undoes: where the target stands and which version must serve. */
export interface UndoInput {
  /** The version that must end up serving all traffic. */
  to: string;
  /** Every pool the target reports now. */
  state: TargetState;
  /** Replicas the environment runs at full size. */
  replicas: number;
  /** Why the undo runs. */
  reason: 'aborted' | 'failed' | 'emergency';
}

/**
 * The generator a strategy returns: it yields actions and receives each action's outcome.
 * It must be deterministic given its input and the outcomes it receives: the engine replays it
 * from the journal when it resumes a run.
 */
export type ActionPlan = Generator<Action, void, ActionOutcome>;

/**
 * Pure release policy: no I/O. Given where the target stands and the version wanted, yields
 * actions; says how to undo itself from any point.
 *
 * @example
 * ```ts
 * const allAtOnce = {
 *   name: 'all-at-once',
 *   *deploy({ version, stable, replicas }) {
 *     const pool = poolName(version)
 *     yield { type: 'provision', pool, version, replicas }
 *     yield { type: 'analyze', name: 'preview', pools: [pool] }
 *     yield { type: 'route', weights: { [pool]: 100 } }
 *     yield { type: 'promote', pool }
 *     if (stable) yield { type: 'retire', pool: stable.name }
 *   },
 *   undo: restoreVersion,
 * } satisfies Strategy
 * ```
 */
export interface Strategy {
  readonly name: string;
  /** The actions that take the target from `input.stable` to `input.version`. */
  deploy(input: StrategyInput): ActionPlan;
  /** The actions that bring all traffic back to `input.to` from any point. */
  undo(input: UndoInput): ActionPlan;
  /**
   * Figures a dry run reports for this plan (a canary's worst-case detection time and traffic exposure,
   * say): `engine.plan()` puts them in `Plan.summary`. Pure, like `deploy`. Optional.
   */
  summarize?(plan: { version: string; actions: readonly Action[] }): Record<string, unknown>;
  /** Capabilities the strategy needs from the target, checked in preflight. */
  readonly requires?: ReadonlyArray<'route' | 'traffic'>;
}
