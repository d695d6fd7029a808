import type { GateOptions } from '../analysis/types.js';
import { ConfigInvalidError } from '../errors.js';
import { poolName } from '../target/types.js';
import { analyze, promote, provision, retire, route } from './effects.js';
import { restoreVersion } from './restore.js';
import type { ActionPlan, Strategy, StrategyInput } from './types.js';

/** Options of the built-in {@link rolling} strategy. */
export interface RollingOptions {
  /**
   * Replicas above the desired count during the update: a count, or a percentage string of the desired
   * count rounded up, as in Kubernetes. @default '25%'
   */
  maxSurge?: number | `${number}%`;
  /**
   * Replicas below the desired count during the update: a count, or a percentage rounded down.
   * @default '25%'
   */
  maxUnavailable?: number | `${number}%`;
  /** Gate run after each batch of new replicas takes traffic. @default one measurement */
  gate?: GateOptions;
  /** Names of the engine's verifiers run at each batch. @default all */
  verifiers?: string[];
}

function resolve(value: number | string, total: number, roundUp: boolean, what: string): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0)
      throw new ConfigInvalidError(
        `rolling: ${what} must be a non-negative integer or a percentage, got ${value}`,
      );
    return value;
  }
  const m = /^(\d+(?:\.\d+)?)%$/.exec(value);
  if (!m)
    throw new ConfigInvalidError(
      `rolling: ${what} must be a count or a percentage like "25%", got "${value}"`,
    );
  const share = (Number(m[1]) / 100) * total;
  return roundUp ? Math.ceil(share) : Math.floor(share);
}

/** Integer weights proportional to replica counts, summing to 100. */
function weightsFor(
  oldPool: string,
  oldCount: number,
  newPool: string,
  newCount: number,
): Record<string, number> {
  const total = oldCount + newCount;
  const w = Math.round((newCount / total) * 100);
  return { [oldPool]: 100 - w, [newPool]: w };
}

/**
 * Rolling update, as Kubernetes does it: new replicas come up in batches bounded by `maxSurge`, old
 * ones go down bounded by `maxUnavailable`, traffic follows the ready replicas, and each batch passes
 * an analysis gate before the next. Undo restores the old version to full size before moving traffic
 * back (batch replacement in reverse).
 *
 * @example
 * ```ts
 * createReleaseEngine({ strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }), ... })
 * ```
 */
export function rolling(options: RollingOptions = {}): Strategy {
  const surgeOpt = options.maxSurge ?? '25%';
  const unavailableOpt = options.maxUnavailable ?? '25%';
  // Validate the shapes now, so a bad option fails before any release starts.
  resolve(surgeOpt, 4, true, 'maxSurge');
  resolve(unavailableOpt, 4, false, 'maxUnavailable');

  return {
    name: 'rolling',
    requires: ['route'],
    *deploy(input: StrategyInput): ActionPlan {
      const { version, stable, replicas } = input;
      const next = poolName(version);
      const gate = (name: string) =>
        analyze({
          name,
          pools: [next],
          ...(options.gate ? { gate: options.gate } : {}),
          ...(options.verifiers ? { verifiers: options.verifiers } : {}),
        });

      if (!stable || stable.name === next) {
        // First release (or re-provisioning the serving pool): bring it up, check it, send it traffic.
        yield* provision({ pool: next, version, replicas });
        yield* gate('initial');
        yield* route({ [next]: 100 });
        yield* promote(next);
        return;
      }

      let surge = resolve(surgeOpt, replicas, true, 'maxSurge');
      let unavailable = resolve(unavailableOpt, replicas, false, 'maxUnavailable');
      if (surge === 0 && unavailable === 0) {
        throw new ConfigInvalidError(
          'rolling: maxSurge and maxUnavailable cannot both be 0 (the update could never progress)',
        );
      }
      // Zero downtime: never take every old replica away before a new one serves.
      if (surge === 0 && unavailable >= replicas) {
        if (replicas > 1) unavailable = replicas - 1;
        else [surge, unavailable] = [1, 0];
      }

      if (!Number.isInteger(stable.replicas) || stable.replicas < 0) {
        throw new ConfigInvalidError(
          `rolling: the stable pool ${stable.name} reports ${String(stable.replicas)} replicas`,
        );
      }
      let oldCount = stable.replicas;
      let newCount = 0;
      let batch = 0;
      const weights = () =>
        oldCount === 0 ? { [next]: 100 } : weightsFor(stable.name, oldCount, next, newCount);
      while (newCount < replicas || oldCount > 0) {
        // Scale up the new pool as far as the surge allows, send it its share, and judge it.
        const up = Math.min(replicas, replicas + surge - oldCount);
        if (up > newCount) {
          newCount = up;
          batch++;
          yield* provision({ pool: next, version, replicas: newCount });
          yield* route(weights());
          yield* gate(`batch-${batch}`);
        }
        // Scale down the old pool as far as availability allows; its traffic leaves before its replicas do.
        const down = Math.max(0, replicas - unavailable - newCount);
        if (down < oldCount) {
          oldCount = down;
          yield* route(weights());
          if (oldCount === 0) yield* retire(stable.name);
          else yield* provision({ pool: stable.name, version: stable.version, replicas: oldCount });
        }
      }
      yield* promote(next);
    },
    undo: restoreVersion,
  };
}
