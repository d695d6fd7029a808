import {
  type ActionPlan,
  type AnalyzeAction,
  type PoolState,
  pause,
  poolName,
  type Strategy,
  type StrategyInput,
  type UndoInput,
  type Weights,
} from '@codegraph/release-core';
import { type CanaryExposure, canaryExposure, exposureOf } from './exposure.js';
import { type CanaryOptions, type CanaryStep, resolveCanary } from './options.js';

/** What {@link canary} returns: a {@link Strategy}, plus its expanded steps and exposure figures. */
export interface CanaryStrategy extends Strategy {
  /** The steps the canary runs, shorthands expanded. */
  readonly steps: readonly CanaryStep[];
  /** Worst-case detection time and traffic exposure of these steps (see {@link canaryExposure}). */
  readonly exposure: CanaryExposure;
}

/** Prefix of the baseline pool's name: `baseline-<stable version>`. */
export const baselinePrefix = 'baseline';

/** Pool names of one canary release: distinct from each other whatever the versions are called. */
export function canaryPools(version: string, stable: PoolState): { canary: string; baseline: string } {
  let baseline = poolName(stable.version, baselinePrefix);
  if (baseline === stable.name) baseline = poolName(stable.version, `${baselinePrefix}2`);
  let canary = poolName(version);
  if (canary === stable.name || canary === baseline) canary = poolName(version, 'canary');
  return { canary, baseline };
}

/** Replicas the canary needs for `weight` percent of traffic: proportional, rounded up, at least one. */
const proportional = (replicas: number, weight: number) => Math.max(1, Math.ceil((replicas * weight) / 100));

/**
 * A traffic-weighted canary, as Argo Rollouts runs one. The new version gets its own pool, sized to its
 * share of traffic, and takes traffic step by step (`setWeight`), with pauses (timed, or until
 * `engine.promote(runId)`), analysis gates and explicit scaling between steps. The stable pool keeps its
 * full size the whole time, so an abort moves all traffic back in one route change. When every step
 * passed, the canary is scaled to full size, takes all traffic, is promoted, and the old pools retire.
 *
 * A failed analysis (any verdict but `pass`) or `engine.abort(runId)` makes the engine run {@link undo}:
 * all traffic to stable at once, then the canary (and baseline) retire. `engine.promote(runId, { full:
 * true })` at a pause skips the remaining steps. With `baseline: true`, a pool of the stable version runs
 * at the canary's weight and size, and analyses judge `[canary, baseline]` (see `canaryJudge`).
 *
 * Options are checked here: bad weights, `maxWeight < stepWeight`, or an analysis naming no verifier
 * throw `ConfigInvalidError` (`CG_CONFIG_INVALID`) before any release.
 *
 * @example
 * ```ts
 * const strategy = canary({
 *   weights: [5, 25, 50],
 *   analysis: { verifiers: ['judge'], gate: { count: 5, intervalMs: 2000, inconclusiveLimit: 2 } },
 *   baseline: true,
 * })
 * const engine = createReleaseEngine({ strategy, verifiers: [canaryJudge()], target, store, environment: 'production' })
 * console.log(strategy.exposure.detectMs) // worst-case time for a bad canary to be caught
 * ```
 */
export function canary(options: CanaryOptions = {}): CanaryStrategy {
  const resolved = resolveCanary(options);
  const { steps, baseline: withBaseline } = resolved;
  const exposure = exposureOf(steps);

  function* deploy(input: StrategyInput): ActionPlan {
    const { version, stable, replicas } = input;
    if (!stable) {
      // A first release has nothing to compare with nor fall back to: bring it up and send it traffic.
      const pool = poolName(version);
      yield { type: 'provision', pool, version, replicas };
      yield { type: 'route', weights: { [pool]: 100 } };
      yield { type: 'promote', pool };
      return;
    }
    const pools = canaryPools(version, stable);
    const stableVersion = stable.version;
    const underTest = withBaseline ? [pools.canary, pools.baseline] : [pools.canary];
    if (stable.replicas < replicas || stable.ready < replicas) {
      // Full capacity on stable is what makes an abort instant; restore it before anything else.
      yield { type: 'provision', pool: stable.name, version: stable.version, replicas };
    }
    let weight = 0;
    let scale: { replicas: number } | { weight: number } | undefined;
    let size = 0;
    const wanted = () =>
      scale === undefined
        ? proportional(replicas, weight)
        : 'replicas' in scale
          ? scale.replicas
          : proportional(replicas, scale.weight);
    function* resize(): ActionPlan {
      const next = wanted();
      if (next === size) return;
      size = next;
      yield { type: 'provision', pool: pools.canary, version, replicas: size };
      if (withBaseline)
        yield { type: 'provision', pool: pools.baseline, version: stableVersion, replicas: size };
    }
    const route = (): Weights =>
      withBaseline
        ? { [stable.name]: 100 - 2 * weight, [pools.canary]: weight, [pools.baseline]: weight }
        : { [stable.name]: 100 - weight, [pools.canary]: weight };

    for (const step of steps) {
      // A canary is never judged or paused before it runs: size it on first need.
      if (size === 0 && !('setWeight' in step) && !('setCanaryScale' in step)) yield* resize();
      if ('setWeight' in step) {
        weight = step.setWeight;
        // Capacity before traffic: grow the canary first; never route to a pool too small for its share.
        yield* resize();
        yield { type: 'route', weights: route() };
      } else if ('setCanaryScale' in step) {
        const s = step.setCanaryScale;
        scale = 'matchTrafficWeight' in s ? undefined : s;
        yield* resize();
      } else if ('pause' in step) {
        const outcome = yield* pause({
          ...(step.pause.durationMs !== undefined ? { durationMs: step.pause.durationMs } : {}),
          reason: `canary at ${weight}%`,
        });
        if (outcome.full) break;
      } else {
        const a = step.analysis;
        const action: AnalyzeAction = {
          type: 'analyze',
          name: a.name ?? `canary-${weight}`,
          pools: underTest,
          verifiers: [...a.verifiers],
          ...(a.gate ? { gate: { ...a.gate } } : {}),
        };
        yield action;
      }
    }
    // Every step passed (or an operator asked for full promotion): full size, all traffic, old pools out.
    if (size !== replicas) yield { type: 'provision', pool: pools.canary, version, replicas };
    yield { type: 'route', weights: { [pools.canary]: 100 } };
    yield { type: 'promote', pool: pools.canary };
    if (withBaseline) yield { type: 'retire', pool: pools.baseline };
    yield { type: 'retire', pool: stable.name };
  }

  return {
    name: resolved.name,
    requires: ['route'],
    steps,
    exposure,
    deploy,
    undo,
    // What this very plan exposes (the dry run's actions, e.g. with the baseline and scale steps resolved).
    summarize: (plan) => ({
      exposure: canaryExposure({ version: plan.version, actions: [...plan.actions] }),
    }),
  } satisfies CanaryStrategy;
}

/**
 * The canary's undo: all traffic to the stable version in one route change (its pool kept full size),
 * then every other pool (canary, baseline) retires. Should the stable pool be short of replicas (it was
 * scaled by hand, say), it is brought back to full size before traffic moves.
 */
export function* undo(input: UndoInput): ActionPlan {
  const { to, state, replicas } = input;
  const isBaseline = (p: PoolState) =>
    p.name.startsWith(`${baselinePrefix}-`) || p.name.startsWith(`${baselinePrefix}2-`);
  const candidates = state.pools
    .filter((p) => p.version === to)
    .sort(
      (a, b) => Number(isBaseline(a)) - Number(isBaseline(b)) || b.weight - a.weight || b.ready - a.ready,
    );
  const existing = candidates[0];
  const pool = existing?.name ?? poolName(to);
  if (!existing || existing.replicas < replicas || existing.ready < replicas) {
    yield { type: 'provision', pool, version: to, replicas };
  }
  const others = state.pools.filter((p) => p.name !== pool);
  if (others.some((p) => p.weight > 0) || existing?.weight !== 100) {
    yield { type: 'route', weights: { [pool]: 100 } };
  }
  yield { type: 'promote', pool };
  // The canary first: it is what failed; the baseline after.
  const order = [...others].sort((a, b) => Number(a.version === to) - Number(b.version === to));
  for (const other of order) yield { type: 'retire', pool: other.name };
}
