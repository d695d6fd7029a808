import type { OperationContext } from '../context.js';

/** One group of identical replicas running one version: stable, canary, blue, green, baseline. */
export interface PoolState {
  /** The pool's name, chosen by the strategy (see {@link poolName}). */
  name: string;
  /** The version every replica of the pool runs. */
  version: string;
  /** Replicas asked for. */
  replicas: number;
  /** Replicas that answer their health check. */
  ready: number;
  /** Share of traffic in percent, 0..100. */
  weight: number;
  /** Base URLs of the pool's replicas, e.g. `http://127.0.0.1:41234`. */
  endpoints: string[];
}

/** What a target reports about itself: its pools and the URL clients use. */
export interface TargetState {
  pools: PoolState[];
  /** The URL that clients use (the load balancer or proxy), when the target has one. */
  endpoint?: string | undefined;
}

/** A request to make a pool run `replicas` replicas of `version`. */
export interface ProvisionRequest {
  pool: string;
  version: string;
  replicas: number;
}

/**
 * Traffic weights per pool in percent; the values sum to 100. The empty object `{}` takes all traffic
 * away (maintenance: the front answers 503), as a recovery does before it stops the service.
 */
export type Weights = Record<string, number>;

/** Per-pool request figures measured by a target's proxy or load balancer. */
export interface PoolTraffic {
  pool: string;
  requests: number;
  errors: number;
  /** Latency samples in milliseconds, most recent last (bounded ring). */
  latencyMs: number[];
  /** Since when these figures were counted (ISO time). */
  since: string;
}

/**
 * The mechanism that runs versions and routes traffic. Every operation is idempotent: calling it
 * again with the same arguments after a crash converges to the same state.
 *
 * Optional capabilities are optional methods; the engine raises `CG_CAPABILITY_MISSING` when a
 * strategy needs one that the target lacks.
 *
 * @example
 * ```ts
 * const target = {
 *   name: 'my-lb',
 *   async describe() { return { pools: await lb.pools() } },
 *   async provision({ pool, version, replicas }) { return lb.ensure(pool, version, replicas) },
 *   async route(weights) { await lb.setWeights(weights) },
 *   async retire(pool) { await lb.remove(pool) },
 * } satisfies Target
 * ```
 */
export interface Target {
  /** Shown in logs and errors. */
  readonly name: string;
  /** Reads the current pools; no side effect. */
  describe(ctx?: OperationContext): Promise<TargetState>;
  /** Makes `pool` run `replicas` replicas of `version` and waits until they are ready. Idempotent. */
  provision(request: ProvisionRequest, ctx?: OperationContext): Promise<PoolState>;
  /** Sets traffic weights. Pools not named get 0; `{}` drains all traffic (maintenance). Idempotent. Optional capability. */
  route?(weights: Weights, ctx?: OperationContext): Promise<void>;
  /** Stops a pool that receives no traffic and removes it. Idempotent: retiring a missing pool is a no-op. */
  retire(pool: string, ctx?: OperationContext): Promise<void>;
  /** Per-pool request figures seen by the target's proxy. Optional capability. */
  traffic?(pool: string, ctx?: OperationContext): Promise<PoolTraffic>;
  /** Releases connections and handles held by this object; running pools keep running. */
  close?(): Promise<void>;
}

/** The pool name strategies use for a version: `v1.2.3` stays `v1.2.3`, other characters become `-`. */
export function poolName(version: string, prefix = ''): string {
  const safe = version.replace(/[^A-Za-z0-9._-]/g, '-');
  return prefix ? `${prefix}-${safe}` : safe;
}
