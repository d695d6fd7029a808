import type { PoolState } from '../target/types.js';
import { poolName } from '../target/types.js';
import { promote, provision, retire, route } from './effects.js';
import type { ActionPlan, UndoInput } from './types.js';

/**
 * The default undo: brings `to` back to full size (re-using its pool when it still runs, which makes
 * the switch instant), moves all traffic to it, then retires every other pool.
 * Capacity is restored before traffic moves and traffic moves before anything is stopped, so an
 * undo never routes to a pool that does not exist and never drops below full capacity.
 */
export function* restoreVersion(input: UndoInput): ActionPlan {
  const { to, state, replicas } = input;
  const existing: PoolState | undefined = state.pools
    .filter((p) => p.version === to)
    .sort((a, b) => b.weight - a.weight || b.ready - a.ready)[0];
  const pool = existing?.name ?? poolName(to);
  if (!existing || existing.replicas < replicas || existing.ready < replicas) {
    yield* provision({ pool, version: to, replicas });
  }
  const others = state.pools.filter((p) => p.name !== pool);
  if (others.some((p) => p.weight > 0) || (existing?.weight ?? 0) !== 100) {
    yield* route({ [pool]: 100 });
  }
  yield* promote(pool);
  for (const other of others) yield* retire(other.name);
}

/** The pool that serves the most traffic, or undefined when nothing is routed. */
export function servingPool(pools: readonly PoolState[]): PoolState | undefined {
  return [...pools].filter((p) => p.weight > 0).sort((a, b) => b.weight - a.weight)[0];
}
