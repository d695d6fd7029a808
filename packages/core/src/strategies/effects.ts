import type { Weights } from '../target/types.js';
import type {
  Action,
  ActionOutcome,
  ActionOutcomes,
  AnalyzeAction,
  PauseAction,
  ProvisionAction,
} from './types.js';

/**
 * A step of a strategy that yields one action and returns that action's outcome, typed: the engine
 * feeds each action back its own outcome type ({@link ActionOutcomes}), so `yield*` gives the
 * strategy a `PoolState` for a provision, an `AnalysisResult` for an analysis, and so on.
 */
export type Effect<A extends Action> = Generator<Action, ActionOutcomes[A['type']], ActionOutcome>;

/**
 * Yields any action and returns its outcome, typed by the action's `type` (as typed-redux-saga's
 * `call`). The helpers below are this with the `type` filled in.
 *
 * @example
 * ```ts
 * const state = yield* act({ type: 'provision', pool: 'v2', version: 'v2', replicas: 3 })
 * state.ready // number
 * ```
 */
export function* act<A extends Action>(action: A): Effect<A> {
  // The engine's contract: the value sent back for an action is that action's outcome type.
  return (yield action) as ActionOutcomes[A['type']];
}

/**
 * Provisions a pool; returns its {@link PoolState}.
 *
 * @example
 * ```ts
 * const pool = yield* provision({ pool: 'canary-v2', version: 'v2', replicas: 1 })
 * ```
 */
export function provision(request: Omit<ProvisionAction, 'type'>): Effect<ProvisionAction> {
  return act<ProvisionAction>({ type: 'provision', ...request });
}

/**
 * Sets traffic weights (`{}`: maintenance); returns the weights applied.
 *
 * @example
 * ```ts
 * yield* route({ stable: 95, canary: 5 })
 * ```
 */
export function route(weights: Weights): Effect<{ type: 'route'; weights: Weights }> {
  return act<{ type: 'route'; weights: Weights }>({ type: 'route', weights });
}

/**
 * Runs an analysis gate; returns its `AnalysisResult` (the engine stops the plan on anything but a pass).
 *
 * @example
 * ```ts
 * const verdict = yield* analyze({ name: 'canary-20', pools: ['canary-v2'] })
 * ```
 */
export function analyze(request: Omit<AnalyzeAction, 'type'>): Effect<AnalyzeAction> {
  return act<AnalyzeAction>({ type: 'analyze', ...request });
}

/**
 * Pauses for a duration or until approved; returns how the pause ended (`full` when an operator asked
 * to skip every remaining step).
 *
 * @example
 * ```ts
 * const { full } = yield* pause({ reason: 'canary at 20%' })
 * if (full) return
 * ```
 */
export function pause(request: Omit<PauseAction, 'type'> = {}): Effect<PauseAction> {
  return act<PauseAction>({ type: 'pause', ...request });
}

/**
 * Records a pool as the environment's stable one; returns `{ pool, version }`.
 *
 * @example
 * ```ts
 * yield* promote('canary-v2')
 * ```
 */
export function promote(pool: string): Effect<{ type: 'promote'; pool: string }> {
  return act<{ type: 'promote'; pool: string }>({ type: 'promote', pool });
}

/**
 * Stops a pool that takes no traffic; returns `{ pool }`.
 *
 * @example
 * ```ts
 * yield* retire('v1')
 * ```
 */
export function retire(pool: string): Effect<{ type: 'retire'; pool: string }> {
  return act<{ type: 'retire'; pool: string }>({ type: 'retire', pool });
}
