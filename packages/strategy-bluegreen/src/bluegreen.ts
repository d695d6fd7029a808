import {
  type ActionPlan,
  type AnalyzeAction,
  analyze,
  type Effect,
  type PoolState,
  pause,
  promote,
  provision,
  retire,
  route,
  type Strategy,
  type StrategyInput,
  servingPool,
  type UndoInput,
} from '@codegraph/release-core';
import { type BlueGreenOptions, type PromotionAnalysis, resolveOptions } from './options.js';

/** The two pool names a blue-green environment alternates between. */
const COLOURS = ['blue', 'green'] as const;

/** The colour that does not serve: where the next version goes. */
const idleColour = (serving: string | undefined): string =>
  serving === COLOURS[0] ? COLOURS[1] : COLOURS[0];

function analyzeAction(name: string, pool: string, analysis: PromotionAnalysis): Effect<AnalyzeAction> {
  return analyze({
    name,
    pools: [pool],
    ...(analysis.verifiers ? { verifiers: [...analysis.verifiers] } : {}),
    ...(analysis.gate ? { gate: structuredClone(analysis.gate) } : {}),
  });
}

/**
 * Blue-green release, as Argo Rollouts does it: the new version comes up at full size in the idle
 * colour (the preview), is analysed on its own endpoints, takes all traffic in one atomic switch, is
 * analysed again under production traffic, and the old colour stays warm for `scaleDownDelayMs` so
 * that a rollback is an instant switch back.
 *
 * - A failure before the switch retires the preview: production never saw it.
 * - A failure after the switch (or an abort, or the engine's emergency rollback while the old colour
 *   still runs) switches all traffic back to the warm colour at once, then retires the new colour
 *   after `abortScaleDownDelayMs`.
 *
 * The pools are named `blue` and `green`. Bad options throw `ConfigInvalidError` (`CG_CONFIG_INVALID`)
 * here, before any release starts.
 *
 * @example
 * ```ts
 * import { createReleaseEngine, fileStore, httpValidation, localTarget } from '@codegraph/release-core'
 * import { blueGreen } from '@codegraph/strategy-bluegreen'
 *
 * const engine = createReleaseEngine({
 *   environment: 'production',
 *   target: localTarget({ stateDir: '.release/local', command }),
 *   strategy: blueGreen({ prePromotionAnalysis: { gate: { count: 3, intervalMs: 1_000 } } }),
 *   verifiers: [httpValidation()],
 *   store: fileStore({ dir: '.release' }),
 * })
 * await engine.release({ version: 'v1.4.0' })
 * ```
 */
export function blueGreen(options: BlueGreenOptions = {}) {
  const o = resolveOptions(options);

  return {
    name: 'blue-green',
    requires: ['route'],

    *deploy(input: StrategyInput): ActionPlan {
      const { version, state, replicas } = input;
      // The serving pool, read from `state` rather than `input.stable`: the engine computes `stable`
      // the same way, and journals written by core before 53faad5 replay `stable` as "[Circular]".
      const stable = servingPool(state.pools);
      const preview = idleColour(stable?.name);

      // Only the stable colour may take traffic while the preview comes up (a half-finished switch
      // made by hand, say): the preview is not seen by production before it passed its analysis.
      if (stable && state.pools.some((p) => p.name !== stable.name && p.weight > 0)) {
        yield* route({ [stable.name]: 100 });
      }
      // A preview colour left running another version (an earlier failed release) goes first.
      const leftover = state.pools.find((p) => p.name === preview);
      if (leftover && leftover.version !== version) yield* retire(preview);

      yield* provision({ pool: preview, version, replicas });
      if (o.pre) yield* analyzeAction('pre-promotion', preview, o.pre);

      let full = false;
      if (!o.autoPromotion) {
        const approval = yield* pause({
          reason: `${version} is ready in ${preview}; engine.promote(runId) switches all traffic to it`,
        });
        // An approval may ask to skip every remaining step (`engine.promote(id, { full: true })`).
        full = approval.full === true;
      }

      // The switch: one route call moves every request at once.
      yield* route({ [preview]: 100 });
      if (o.post && !full) yield* analyzeAction('post-promotion', preview, o.post);
      yield* promote(preview);

      const old = state.pools.filter((p) => p.name !== preview);
      if (old.length === 0) return;
      if (stable && o.scaleDownDelayMs > 0) {
        yield* pause({
          durationMs: o.scaleDownDelayMs,
          reason: `scale-down delay: ${stable.name} (${stable.version}) stays warm for an instant switch back`,
        });
      }
      for (const p of old) yield* retire(p.name);
    },

    *undo(input: UndoInput): ActionPlan {
      const { to, state, replicas } = input;
      const serving = servingPool(state.pools);
      // The warm colour: the pool already running `to`, preferring one with traffic, then ready replicas.
      const warm: PoolState | undefined = state.pools
        .filter((p) => p.version === to)
        .sort((a, b) => b.weight - a.weight || b.ready - a.ready)[0];
      const pool = warm?.name ?? idleColour(serving?.name);
      const retired = new Set<string>();

      if (!warm) {
        // Nothing runs `to` any more (the scale-down delay is over): bring it up in the idle colour.
        const occupant = state.pools.find((p) => p.name === pool);
        if (occupant) {
          if (occupant.weight > 0 && serving) yield* route({ [serving.name]: 100 });
          yield* retire(pool);
          retired.add(pool);
        }
      }
      if (!warm || warm.replicas < replicas || warm.ready < replicas) {
        yield* provision({ pool, version: to, replicas });
      }
      const others = state.pools.filter((p) => p.name !== pool && !retired.has(p.name));
      if ((warm?.weight ?? 0) !== 100 || others.some((p) => p.weight > 0)) {
        // The switch back: one route call, to a colour that is already up.
        yield* route({ [pool]: 100 });
      }
      yield* promote(pool);

      // A preview that never had traffic goes at once; a colour that served is kept for inspection.
      const served = others.filter((p) => p.weight > 0);
      for (const p of others) if (p.weight === 0) yield* retire(p.name);
      if (served.length === 0) return;
      if (o.abortScaleDownDelayMs > 0) {
        yield* pause({
          durationMs: o.abortScaleDownDelayMs,
          reason: `abort scale-down delay: ${served.map((p) => `${p.name} (${p.version})`).join(', ')} kept for inspection`,
        });
      }
      for (const p of served) yield* retire(p.name);
    },
  } satisfies Strategy;
}
