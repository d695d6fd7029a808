import type { OperationContext } from '../../context.js';
import { ConfigInvalidError, TargetOperationError, throwIfAborted } from '../../errors.js';
import { createMutex } from '../../kit/mutex.js';
import { checkWeights } from '../../rules.js';
import type { PoolState, PoolTraffic, ProvisionRequest, Target, TargetState, Weights } from '../types.js';
import { checkPool, checkProvision, type LocalTargetOptions, resolveOptions } from './options.js';
import { isAlive, stopProcess } from './processes.js';
import { ProxyControl } from './proxy-control.js';
import { planReplicas, startReplica, urlOf } from './replicas.js';
import {
  type PoolRecord,
  type ProxyRecord,
  type ReplicaRecord,
  type RoutesRecord,
  StateDir,
} from './state.js';

export type { LocalTargetOptions, ReplicaCommand, ReplicaCommandInput } from './options.js';
export { localTargetDefaults } from './options.js';

/**
 * The embedded default {@link Target}: what {@link localTarget} returns. Besides the Target operations it
 * tells where clients and Prometheus connect, and can stop everything it runs.
 *
 * @example
 * ```ts
 * const target = localTarget({ stateDir, command })
 * const url = await target.endpoint()        // send clients here
 * const scrape = await target.metricsUrl()   // per-pool figures for Prometheus
 * await target.destroy()                     // stop every replica and the proxy
 * ```
 */
export interface LocalTarget extends Target {
  /**
   * Sets pool weights (integers 0..100 summing to 100; `{}` for maintenance, when the proxy answers 503);
   * named pools must exist and weighted ones be ready.
   */
  route(weights: Weights, ctx?: OperationContext): Promise<void>;
  /** Requests, errors and recent latencies of `pool`, as the proxy counted them since the last reset. */
  traffic(pool: string, ctx?: OperationContext): Promise<PoolTraffic>;
  /** Releases this object's sockets; the proxy and replicas keep running. */
  close(): Promise<void>;
  /** The proxy's URL that clients use, e.g. `http://127.0.0.1:41234`; starts the proxy if it is not running. */
  endpoint(ctx?: OperationContext): Promise<string>;
  /** Where Prometheus scrapes the proxy's per-pool metrics (`codegraph_proxy_*`) on its control port. */
  metricsUrl(ctx?: OperationContext): Promise<string>;
  /** Starts counting a pool's traffic figures afresh (every pool's when `pool` is omitted). */
  resetTraffic(pool?: string, ctx?: OperationContext): Promise<void>;
  /** Stops every replica and the proxy recorded in `stateDir` and forgets them; logs stay. */
  destroy(): Promise<void>;
}

/** How long a running replica may take to answer its health check before it counts as not ready. */
const probeTimeoutMs = 5_000;

/**
 * The embedded default target: each replica is a detached process on a loopback port, behind a small
 * weighted reverse proxy that runs as its own process (smooth weighted round-robin across pools,
 * round-robin within a pool, retries of idempotent requests on connection errors, per-pool figures and
 * Prometheus metrics on its control port). Everything is recorded in `stateDir`, so a later instance
 * (after the engine was killed, say) adopts the running proxy and replicas.
 *
 * Weights are 0 for a new pool until {@link LocalTarget.route} sends it traffic. One instance runs its
 * operations one at a time; across processes, only starting the proxy is locked, so let one engine at a
 * time change a `stateDir` (the engine's environment lock does).
 *
 * @example
 * ```ts
 * const target = localTarget({
 *   stateDir: '.release/local',
 *   command: ({ version, port }) => ({
 *     command: `/opt/codegraph/${version}/bin/codegraph-api`,
 *     args: ['--port', String(port)],
 *   }),
 * })
 * await target.provision({ pool: 'v1.2.3', version: 'v1.2.3', replicas: 2 })
 * await target.route({ 'v1.2.3': 100 })
 * console.log(await target.endpoint()) // http://127.0.0.1:41234
 * ```
 */
export function localTarget(options: LocalTargetOptions): LocalTarget {
  const opts = resolveOptions(options);
  const { name, host } = opts;
  const state = new StateDir(opts.stateDir);
  const control = new ProxyControl(state, name);
  const url = (r: ReplicaRecord) => urlOf(host, r.port);
  // The proxy is ours and starts in well under a second; a short replica deadline must not starve it.
  const proxyOpts = { host, proxyPort: opts.proxyPort, timeoutMs: Math.max(opts.readyTimeoutMs, 15_000) };

  // One operation at a time per instance: each reads, changes and writes the whole state.
  const mutex = createMutex();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => mutex.run(fn);

  const ready = async (r: ReplicaRecord, signal?: AbortSignal) =>
    isAlive(r) && (await control.healthy(`${url(r)}${opts.healthPath}`, signal, probeTimeoutMs));
  const readyMembers = async (p: PoolRecord, signal?: AbortSignal) => {
    const flags = await Promise.all(p.members.map((m) => ready(m, signal)));
    return p.members.filter((_, i) => flags[i]);
  };

  /** Sends the proxy the full table: every recorded pool with its ready endpoints and weight. */
  async function publish(
    proxy: ProxyRecord,
    pools: Record<string, PoolRecord>,
    weights: Weights,
    signal?: AbortSignal,
  ) {
    const table: RoutesRecord = { pools: {} };
    for (const [pool, p] of Object.entries(pools)) {
      const endpoints = (await readyMembers(p, signal)).map(url);
      table.pools[pool] = { version: p.version, weight: weights[pool] ?? 0, endpoints };
    }
    await control.putRoutes(proxy, table, signal);
  }

  const currentWeights = async (): Promise<Weights> =>
    Object.fromEntries(Object.entries((await state.routes()).pools).map(([k, v]) => [k, v.weight]));

  /** Takes replicas out of the proxy, lets their in-flight requests finish, then stops them. */
  async function removeMembers(
    proxy: ProxyRecord,
    pools: Record<string, PoolRecord>,
    pool: string,
    leaving: ReplicaRecord[],
    signal?: AbortSignal,
  ) {
    if (leaving.length === 0) return;
    const p = pools[pool]!;
    p.members = p.members.filter((m) => !leaving.includes(m));
    await publish(proxy, pools, await currentWeights(), signal);
    await control.drain(proxy, leaving.map(url), opts.stopTimeoutMs, signal);
    await Promise.all(leaving.map((m) => stopProcess(m, opts.stopTimeoutMs)));
    await state.savePools(pools);
  }

  async function provision(request: ProvisionRequest, ctx: OperationContext = {}): Promise<PoolState> {
    checkProvision(request);
    const { pool, version, replicas } = request;
    const { signal, logger } = ctx;
    return exclusive(async () => {
      throwIfAborted(signal, `provisioning pool ${pool}`);
      const pools = await state.pools();
      const existing = pools[pool];
      if (existing && existing.version !== version) {
        throw new ConfigInvalidError(
          `${name}: pool ${pool} runs version ${existing.version}, not ${version}; retire it first or use another pool name`,
          { plugin: name, details: { pool, running: existing.version, asked: version } },
        );
      }
      const weight = (await currentWeights())[pool] ?? 0;
      if (replicas === 0 && weight > 0) {
        throw new TargetOperationError(
          `${name}: pool ${pool} has weight ${weight}; route its traffic away before scaling it to 0`,
          {
            plugin: name,
          },
        );
      }
      // Decide everything, and build every command, before the first side effect.
      const p: PoolRecord = existing ?? { version, replicas, members: [] };
      const healthy = await readyMembers(p, signal);
      // Dead or unhealthy replicas go; so do the highest-numbered ones above the count asked for.
      const keep = [...healthy].sort((a, b) => a.index - b.index).slice(0, replicas);
      const leaving = p.members.filter((m) => !keep.includes(m));
      const used = keep.map((m) => m.index);
      const planned = await planReplicas(opts, state, pool, version, used, replicas - keep.length);

      await state.ensure();
      const proxy = await control.ensure(proxyOpts, signal);
      p.replicas = replicas;
      pools[pool] = p;
      await state.savePools(pools);
      if (leaving.length > 0) logger?.info(`${name}: stopping ${leaving.length} replica(s) of pool ${pool}`);
      await removeMembers(proxy, pools, pool, leaving, signal);

      if (planned.length > 0)
        logger?.info(`${name}: starting ${planned.length} replica(s) of pool ${pool} (${version})`);
      const spawned: ReplicaRecord[] = [];
      const results = await Promise.allSettled(
        planned.map((plan) =>
          startReplica(
            opts,
            control,
            pool,
            version,
            plan,
            async (r) => {
              spawned.push(r);
              p.members.push(r);
              await state.savePools(pools);
            },
            signal,
          ),
        ),
      );
      const failed = results.flatMap((r, i) =>
        r.status === 'rejected' ? [{ plan: planned[i]!, error: r.reason as unknown }] : [],
      );
      if (failed.length > 0) {
        const failedIndexes = new Set(failed.map((f) => f.plan.index));
        p.members = p.members.filter((m) => !failedIndexes.has(m.index));
        // A pool that never had a ready replica leaves no record, so it can be provisioned afresh.
        if (!existing && p.members.length === 0) {
          await Promise.all(spawned.map((r) => stopProcess(r, opts.stopTimeoutMs)));
          delete pools[pool];
        }
        await state.savePools(pools);
        if (pools[pool]) await publish(proxy, pools, await currentWeights());
        throw failed[0]!.error;
      }
      p.members.sort((a, b) => a.index - b.index);
      await state.savePools(pools);
      await publish(proxy, pools, await currentWeights(), signal);
      return {
        name: pool,
        version,
        replicas,
        ready: p.members.length,
        weight,
        endpoints: p.members.map(url),
      };
    });
  }

  async function route(weights: Weights, ctx: OperationContext = {}): Promise<void> {
    // Core's rule: whole percentages adding up to 100, or `{}` for maintenance (the proxy answers 503).
    checkWeights(weights, `${name}: weights`, { plugin: name });
    const { signal } = ctx;
    return exclusive(async () => {
      throwIfAborted(signal, 'routing');
      const pools = await state.pools();
      for (const [pool, w] of Object.entries(weights)) {
        const p = pools[pool];
        if (!p) {
          throw new ConfigInvalidError(
            `${name}: cannot route to pool ${pool}: no such pool; provision it first`,
            {
              plugin: name,
              details: { pool },
            },
          );
        }
        if (w > 0 && (await readyMembers(p, signal)).length === 0) {
          throw new TargetOperationError(
            `${name}: cannot send ${w}% to pool ${pool}: it has no ready replica`,
            {
              plugin: name,
              details: { pool },
            },
          );
        }
      }
      await state.ensure();
      const proxy = await control.ensure(proxyOpts, signal);
      await publish(proxy, pools, weights, signal);
      ctx.logger?.info(
        `${name}: routed ${Object.entries(weights)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
      );
    });
  }

  async function retire(pool: string, ctx: OperationContext = {}): Promise<void> {
    checkPool(pool);
    const { signal } = ctx;
    return exclusive(async () => {
      throwIfAborted(signal, `retiring pool ${pool}`);
      const pools = await state.pools();
      const p = pools[pool];
      if (!p) return;
      const weight = (await currentWeights())[pool] ?? 0;
      if (weight > 0) {
        throw new TargetOperationError(
          `${name}: pool ${pool} still has weight ${weight}; route its traffic away before retiring it`,
          {
            plugin: name,
            details: { pool, weight },
          },
        );
      }
      const proxy = await control.ensure(proxyOpts, signal);
      await removeMembers(proxy, pools, pool, [...p.members], signal);
      delete pools[pool];
      await state.savePools(pools);
      await publish(proxy, pools, await currentWeights(), signal);
      await control.resetTraffic(proxy, pool, signal);
      ctx.logger?.info(`${name}: retired pool ${pool}`);
    });
  }

  async function describe(ctx: OperationContext = {}): Promise<TargetState> {
    const { signal } = ctx;
    const [pools, weights, proxy] = await Promise.all([
      state.pools(),
      currentWeights(),
      control.running(signal),
    ]);
    const list = await Promise.all(
      Object.entries(pools).map(async ([pool, p]): Promise<PoolState> => {
        const up = await readyMembers(p, signal);
        return {
          name: pool,
          version: p.version,
          replicas: p.replicas,
          ready: up.length,
          weight: weights[pool] ?? 0,
          endpoints: up.map(url),
        };
      }),
    );
    return { pools: list, endpoint: proxy ? urlOf(proxy.host, proxy.port) : undefined };
  }

  async function traffic(pool: string, ctx: OperationContext = {}): Promise<PoolTraffic> {
    checkPool(pool);
    if (!(await state.pools())[pool]) {
      throw new ConfigInvalidError(`${name}: no pool named ${pool}`, { plugin: name, details: { pool } });
    }
    const proxy = await control.ensure(proxyOpts, ctx.signal);
    return control.traffic(proxy, pool, ctx.signal);
  }

  return {
    name,
    describe,
    provision,
    route,
    retire,
    traffic,
    async endpoint(ctx: OperationContext = {}) {
      await state.ensure();
      const proxy = await exclusive(() => control.ensure(proxyOpts, ctx.signal));
      return urlOf(proxy.host, proxy.port);
    },
    async metricsUrl(ctx: OperationContext = {}) {
      await state.ensure();
      const proxy = await exclusive(() => control.ensure(proxyOpts, ctx.signal));
      return `${urlOf(proxy.host, proxy.controlPort)}/metrics`;
    },
    async resetTraffic(pool?: string, ctx: OperationContext = {}) {
      if (pool !== undefined) checkPool(pool);
      const proxy = await control.ensure(proxyOpts, ctx.signal);
      await control.resetTraffic(proxy, pool, ctx.signal);
    },
    close: () => control.close(),
    destroy: () =>
      exclusive(async () => {
        const pools = await state.pools();
        const members = Object.values(pools).flatMap((p) => p.members);
        await Promise.all(members.map((m) => stopProcess(m, opts.stopTimeoutMs)));
        const proxy = await state.proxy();
        if (proxy) await stopProcess(proxy, opts.stopTimeoutMs);
        await state.clear();
        await control.close();
      }),
  } satisfies LocalTarget;
}
