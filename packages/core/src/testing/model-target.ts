import type { OperationContext } from '../context.js';
import { ConfigInvalidError, TargetOperationError, throwIfAborted } from '../errors.js';
import { checkPoolName, checkReplicas, checkVersion, checkWeights } from '../rules.js';
import type {
  PoolState,
  PoolTraffic,
  ProvisionRequest,
  Target,
  TargetState,
  Weights,
} from '../target/types.js';

/** One call a {@link ModelTarget} received, in order. */
export type ModelTargetCall =
  | { op: 'provision'; request: ProvisionRequest }
  | { op: 'route'; weights: Weights }
  | { op: 'retire'; pool: string };

/** Options of {@link modelTarget}. */
export interface ModelTargetOptions {
  /** Shown in errors. @default 'model' */
  name?: string;
  /**
   * Replicas of these pools never become ready (`ready: 0`), to test what a strategy or the engine
   * does with a pool that is not ready. @default []
   */
  unreadyPools?: string[];
}

/**
 * The in-memory {@link Target} that {@link modelTarget} returns, with what it was asked to do.
 *
 * @example
 * ```ts
 * const target = modelTarget()
 * await target.provision({ pool: 'stable', version: 'v1', replicas: 2 })
 * target.calls // [{ op: 'provision', request: { pool: 'stable', version: 'v1', replicas: 2 } }]
 * ```
 */
export interface ModelTarget extends Target {
  route(weights: Weights, ctx?: OperationContext): Promise<void>;
  traffic(pool: string, ctx?: OperationContext): Promise<PoolTraffic>;
  /** Every call that passed input validation, in order (refused calls are not recorded). */
  readonly calls: readonly ModelTargetCall[];
}

interface ModelPool {
  version: string;
  replicas: number;
  /** Makes each pool's endpoints its own, whatever characters its name holds. */
  serial: number;
}

/**
 * An in-memory model of the {@link Target} contract: no process, no network, the same rules as
 * `localTarget` (input checked with core's rules before anything changes; provision idempotent and
 * refusing to change a pool's version; route only to existing, ready pools, `{}` for maintenance;
 * a pool with weight can be neither retired nor scaled to 0). It passes `testTarget`, so it is the
 * reference a real target is compared with, and a fast target for strategy and engine tests.
 *
 * @example
 * ```ts
 * import { modelTarget, testTarget } from '@codegraph/release-core/testing'
 *
 * testTarget({ name: 'model', create: () => ({ target: modelTarget(), version: (v) => `${v}.0.0` }) })
 * ```
 */
export function modelTarget(options: ModelTargetOptions = {}): ModelTarget {
  const name = options.name ?? 'model';
  const unready = new Set(options.unreadyPools ?? []);
  const pools = new Map<string, ModelPool>();
  let weights: Weights = {};
  let serial = 0;
  const calls: ModelTargetCall[] = [];
  const ctxOf = { plugin: name };
  const ready = (pool: string, p: ModelPool) => (unready.has(pool) ? 0 : p.replicas);
  const endpoints = (pool: string, p: ModelPool) =>
    Array.from({ length: ready(pool, p) }, (_, i) => `http://pool-${p.serial}.model.invalid:${8000 + i}`);
  const stateOf = (pool: string, p: ModelPool): PoolState => ({
    name: pool,
    version: p.version,
    replicas: p.replicas,
    ready: ready(pool, p),
    weight: weights[pool] ?? 0,
    endpoints: endpoints(pool, p),
  });

  return {
    name,
    get calls() {
      return calls;
    },
    async describe(ctx: OperationContext = {}): Promise<TargetState> {
      throwIfAborted(ctx.signal, `${name}: describe`);
      return { pools: [...pools].map(([pool, p]) => stateOf(pool, p)) };
    },
    async provision(request: ProvisionRequest, ctx: OperationContext = {}): Promise<PoolState> {
      if (typeof request !== 'object' || request === null)
        throw new ConfigInvalidError(`${name}: provision needs { pool, version, replicas }`, ctxOf);
      const pool = checkPoolName(request.pool, `${name}: pool`, ctxOf);
      const version = checkVersion(request.version, `${name}: version`, ctxOf);
      const replicas = checkReplicas(request.replicas, `${name}: replicas`, { ...ctxOf, min: 0 });
      throwIfAborted(ctx.signal, `${name}: provisioning pool ${pool}`);
      const existing = pools.get(pool);
      if (existing && existing.version !== version) {
        throw new ConfigInvalidError(
          `${name}: pool ${pool} runs version ${existing.version}, not ${version}; retire it first or use another pool name`,
          { plugin: name, details: { pool, running: existing.version, asked: version } },
        );
      }
      const weight = weights[pool] ?? 0;
      if (replicas === 0 && weight > 0) {
        throw new TargetOperationError(
          `${name}: pool ${pool} has weight ${weight}; route its traffic away before scaling it to 0`,
          { plugin: name, details: { pool, weight } },
        );
      }
      calls.push({ op: 'provision', request: { pool, version, replicas } });
      const p = existing ? { ...existing, replicas } : { version, replicas, serial: ++serial };
      pools.set(pool, p);
      return stateOf(pool, p);
    },
    async route(next: Weights, ctx: OperationContext = {}): Promise<void> {
      checkWeights(next, `${name}: weights`, ctxOf);
      throwIfAborted(ctx.signal, `${name}: routing`);
      for (const [pool, w] of Object.entries(next)) {
        const p = pools.get(pool);
        if (!p) {
          throw new ConfigInvalidError(
            `${name}: cannot route to pool ${pool}: no such pool; provision it first`,
            {
              plugin: name,
              details: { pool },
            },
          );
        }
        if (w > 0 && ready(pool, p) === 0) {
          throw new TargetOperationError(
            `${name}: cannot send ${w}% to pool ${pool}: it has no ready replica`,
            {
              plugin: name,
              details: { pool },
            },
          );
        }
      }
      calls.push({ op: 'route', weights: { ...next } });
      weights = Object.fromEntries(Object.entries(next).filter(([, w]) => w > 0));
    },
    async retire(pool: string, ctx: OperationContext = {}): Promise<void> {
      checkPoolName(pool, `${name}: pool`, ctxOf);
      throwIfAborted(ctx.signal, `${name}: retiring pool ${pool}`);
      if (!pools.has(pool)) return;
      const weight = weights[pool] ?? 0;
      if (weight > 0) {
        throw new TargetOperationError(
          `${name}: pool ${pool} still has weight ${weight}; route its traffic away before retiring it`,
          { plugin: name, details: { pool, weight } },
        );
      }
      calls.push({ op: 'retire', pool });
      pools.delete(pool);
    },
    async traffic(pool: string): Promise<PoolTraffic> {
      checkPoolName(pool, `${name}: pool`, ctxOf);
      if (!pools.has(pool)) throw new ConfigInvalidError(`${name}: no pool named ${pool}`, ctxOf);
      return { pool, requests: 0, errors: 0, latencyMs: [], since: new Date(0).toISOString() };
    },
  } satisfies ModelTarget;
}
