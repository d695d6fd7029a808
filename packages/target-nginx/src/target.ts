import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ConfigInvalidError,
  localTarget,
  type OperationContext,
  type PoolState,
  type PoolTraffic,
  type ProvisionRequest,
  type Target,
  TargetOperationError,
  type TargetState,
  throwIfAborted,
  type Weights,
} from '@codegraph/release-core';
import { createMutex } from '@codegraph/release-core/kit';
import { TrafficReader } from './access-log.js';
import { configBody, generationIn, type RoutedPool, renderConfig } from './config.js';
import { fileSdGroups, writeFileSd } from './file-sd.js';
import {
  drained,
  freePort,
  generationOf,
  isAlive,
  nginxFiles,
  pidFileMatches,
  retired,
  run,
  sizeOf,
  startMaster,
  stopMaster,
  tail,
  testConfig,
  unrecordedMaster,
  waitForGeneration,
  workersOf,
} from './nginx.js';
import {
  checkPool,
  checkProvision,
  checkWeights,
  type NginxTargetOptions,
  resolveOptions,
} from './options.js';
import { type NginxState, StateFile, writeAtomic } from './state.js';

/**
 * The {@link Target} that {@link nginxTarget} returns: the `Target` methods plus nginx's URL, traffic
 * reset points and teardown.
 *
 * @example
 * ```ts
 * const target: NginxTarget = nginxTarget({ stateDir, command })
 * await target.resetTraffic('canary')
 * const { requests, errors } = await target.traffic('canary')
 * ```
 */
export interface NginxTarget extends Target {
  route(weights: Weights, ctx?: OperationContext): Promise<void>;
  traffic(pool: string, ctx?: OperationContext): Promise<PoolTraffic>;
  close(): Promise<void>;
  /** nginx's URL that clients use, e.g. `http://127.0.0.1:41234`; starts nginx if it is not running. */
  endpoint(ctx?: OperationContext): Promise<string>;
  /** Starts counting a pool's traffic figures afresh (every pool's when `pool` is omitted). */
  resetTraffic(pool?: string, ctx?: OperationContext): Promise<void>;
  /** Stops the nginx master this target started (only that PID) and the backend's processes. Logs stay. */
  destroy(): Promise<void>;
}

type Backend = Target & { destroy?: () => Promise<void> };

const newGeneration = () => `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;

/**
 * A {@link Target} that routes traffic between pools through a real nginx: the pools' processes are run by
 * a backend target (by default a `localTarget` in `stateDir/backend`), and every change of weights or
 * endpoints renders an nginx `upstream`, checks it with `nginx -t` and reloads nginx gracefully. A config
 * nginx refuses is rolled back to the previous one (`nginx.conf.prev`), which keeps serving. A later
 * instance on the same `stateDir` adopts the running nginx.
 *
 * @example
 * ```ts
 * const target = nginxTarget({
 *   stateDir: '.release/nginx',
 *   command: ({ version, port }) => ({
 *     command: `/opt/codegraph/${version}/bin/codegraph-api`,
 *     args: ['--port', String(port)],
 *   }),
 *   nginx: { listenPort: 8080 },
 *   prometheusFileSd: '/etc/prometheus/targets/codegraph.json',
 * })
 * await target.provision({ pool: 'stable', version: 'v1.2.2', replicas: 2 })
 * await target.provision({ pool: 'canary', version: 'v1.2.3', replicas: 1 })
 * await target.route({ stable: 90, canary: 10 })
 * console.log(await target.endpoint()) // http://127.0.0.1:8080
 * ```
 */
export function nginxTarget(options: NginxTargetOptions): NginxTarget {
  const opts = resolveOptions(options);
  const { name, host } = opts;
  const backend: Backend =
    opts.backend ??
    localTarget({
      stateDir: path.join(opts.stateDir, 'backend'),
      command: opts.command!,
      readyTimeoutMs: opts.readyTimeoutMs,
      stopTimeoutMs: opts.stopTimeoutMs,
      name: `${name}-backend`,
    });
  const files = nginxFiles(opts.binary, opts.nginxDir);
  const accessLog = path.join(opts.nginxDir, 'access.log');
  const prevConfig = `${files.config}.prev`;
  const stateFile = new StateFile(opts.nginxDir);
  const trafficReader = new TrafficReader(accessLog);
  const failure = (message: string, details?: Record<string, unknown>, cause?: unknown) =>
    new TargetOperationError(`${name}: ${message}`, { plugin: name, details, cause });

  // One operation at a time per instance: each reads, changes and writes the whole state.
  const mutex = createMutex();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => mutex.run(fn);

  const routed = (pools: PoolState[], weights: Weights): RoutedPool[] =>
    pools.map((p) => ({
      name: p.name,
      version: p.version,
      weight: weights[p.name] ?? 0,
      endpoints: p.endpoints,
    }));
  const running = async (st: NginxState) =>
    st.master !== undefined && st.port !== undefined && (await pidFileMatches(files, st.master));
  const mark = async () => ({ offset: await sizeOf(accessLog), since: new Date().toISOString() });

  /** Adopts the nginx recorded in `stateDir`, or starts one serving the recorded weights. */
  async function ensureRunning(
    st: NginxState,
    pools: PoolState[],
    signal?: AbortSignal,
  ): Promise<NginxState> {
    if (await running(st)) return st;
    const config = await readFile(files.config, 'utf8').catch(() => '');
    const orphan = await unrecordedMaster(files);
    const listening = Number(/^\s*listen [\d.]+:(\d+);$/m.exec(config)?.[1]);
    if (orphan && listening > 0) {
      const next: NginxState = { ...st, port: listening, master: orphan };
      await stateFile.write(next);
      return next;
    }
    await mkdir(path.join(opts.nginxDir, 'tmp'), { recursive: true });
    const port = opts.listenPort || st.port || (await freePort(host));
    const generation = newGeneration();
    await writeAtomic(files.config, renderConfig(opts, port, routed(pools, st.weights), generation));
    const refused = await testConfig(files, files.config);
    if (refused) throw failure(`nginx -t refused the configuration: ${refused}`, { config: files.config });
    const logOffset = await sizeOf(files.errorLog);
    const master = await startMaster(files, opts.reloadTimeoutMs);
    const next: NginxState = { ...st, port, master, marks: { '*': await mark(), ...st.marks } };
    await stateFile.write(next);
    await waitForGeneration(files, host, port, generation, logOffset, opts.reloadTimeoutMs, signal);
    return next;
  }

  /**
   * Renders the config for `pools` at `st.weights`, checks it with `nginx -t`, reloads and waits until nginx
   * serves it. On any failure the previous config is put back (nginx still runs it) and a typed error thrown.
   */
  async function apply(st: NginxState, pools: PoolState[], signal?: AbortSignal): Promise<NginxState> {
    const port = opts.listenPort || st.port!;
    const generation = newGeneration();
    const config = renderConfig(opts, port, routed(pools, st.weights), generation);
    const current = await readFile(files.config, 'utf8').catch(() => '');
    // Unchanged, and nginx serves that file (an engine killed between writing it and reloading leaves it unserved).
    const unchanged = port === st.port && configBody(current) === configBody(config);
    if (unchanged && (await generationOf(host, port)) === generationIn(current)) return st;
    throwIfAborted(signal, `${name}: reloading nginx`);
    await copyFile(files.config, prevConfig);
    await writeAtomic(files.config, config);
    const restore = async (message: string, details: Record<string, unknown>, cause?: unknown) => {
      await copyFile(prevConfig, files.config);
      return failure(`${message}; the previous configuration keeps serving`, details, cause);
    };
    const refused = await testConfig(files, files.config);
    if (refused)
      throw await restore(`nginx -t refused the new configuration: ${refused}`, { nginx: refused });
    const logOffset = await sizeOf(files.errorLog);
    const master = st.master!.pid;
    const oldWorkers = (await workersOf(master)).filter((w) => !w.shuttingDown).map((w) => w.pid);
    const reload = await run(files, ['-e', files.errorLog, '-s', 'reload'], 'reload');
    if (reload.code !== 0) {
      throw await restore(`nginx -s reload failed (exit ${reload.code}): ${reload.output}`, {
        nginx: reload.output,
      });
    }
    // The reload is sent: from here on, no abort, so the file and what nginx runs stay the same.
    try {
      await waitForGeneration(files, host, port, generation, logOffset, opts.reloadTimeoutMs);
    } catch (err) {
      const log = await tail(files.errorLog, 1_000);
      const error = await restore(
        `nginx did not take the new configuration: ${(err as Error).message}`,
        { nginx: log },
        err,
      );
      // In case nginx takes the new config late, have it load the restored one again.
      await run(files, ['-e', files.errorLog, '-s', 'reload'], 'reload').catch(() => {});
      throw error;
    }
    // nginx lets old workers accept for about 100 ms after the new ones start: wait until they stop.
    if (!(await retired(master, oldWorkers, opts.reloadTimeoutMs))) {
      throw failure(
        `nginx's old workers still accept connections ${opts.reloadTimeoutMs} ms after the reload`,
        {
          workers: oldWorkers,
        },
      );
    }
    return { ...st, port };
  }

  async function syncFileSd(pools: PoolState[]): Promise<void> {
    if (opts.prometheusFileSd) await writeFileSd(opts.prometheusFileSd, fileSdGroups(pools));
  }

  const poolsOf = async (ctx: OperationContext) => (await backend.describe(ctx)).pools;

  async function provision(request: ProvisionRequest, ctx: OperationContext = {}): Promise<PoolState> {
    checkProvision(request);
    const { pool, version, replicas } = request;
    const { signal, logger } = ctx;
    return exclusive(async () => {
      throwIfAborted(signal, `${name}: provisioning pool ${pool}`);
      let st = await stateFile.read();
      const weight = st.weights[pool] ?? 0;
      const before = await poolsOf(ctx);
      const current = before.find((p) => p.name === pool);
      if (current && current.version !== version) {
        throw new ConfigInvalidError(
          `${name}: pool ${pool} runs version ${current.version}, not ${version}; retire it first or use another pool name`,
          { plugin: name, details: { pool, running: current.version, asked: version } },
        );
      }
      if (replicas === 0 && weight > 0) {
        throw failure(`pool ${pool} has weight ${weight}; route its traffic away before scaling it to 0`, {
          pool,
          weight,
        });
      }
      st = await ensureRunning(st, before, signal);
      if (current && weight > 0 && current.endpoints.length > replicas) {
        // Leaving replicas go out of the upstream first; old workers finish their requests; then they stop.
        const keep = current.endpoints.slice(0, replicas);
        logger?.info(
          `${name}: taking ${current.endpoints.length - replicas} replica(s) of ${pool} out of nginx`,
        );
        st = await apply(
          st,
          before.map((p) => (p.name === pool ? { ...p, endpoints: keep } : p)),
          signal,
        );
        await stateFile.write(st);
        if (!(await drained(st.master!.pid, opts.drainTimeoutMs, signal))) {
          logger?.warn(
            `${name}: old nginx workers still busy after ${opts.drainTimeoutMs} ms; stopping replicas anyway`,
          );
        }
      }
      let result: PoolState;
      try {
        result = await backend.provision(request, ctx);
      } catch (err) {
        // Whatever the backend managed to do, nginx follows the pools as they are now.
        await poolsOf(ctx)
          .then(async (pools) => {
            await stateFile.write(await apply(st, pools, signal));
            await syncFileSd(pools);
          })
          .catch(() => {});
        throw err;
      }
      const after = await poolsOf(ctx);
      st = await apply(st, after, signal);
      await stateFile.write(st);
      await syncFileSd(after);
      return { ...result, weight };
    });
  }

  async function route(weights: Weights, ctx: OperationContext = {}): Promise<void> {
    checkWeights(weights);
    const { signal } = ctx;
    return exclusive(async () => {
      throwIfAborted(signal, `${name}: routing`);
      const pools = await poolsOf(ctx);
      for (const [pool, w] of Object.entries(weights)) {
        const p = pools.find((x) => x.name === pool);
        if (!p) {
          throw new ConfigInvalidError(
            `${name}: cannot route to pool ${pool}: no such pool; provision it first`,
            {
              plugin: name,
              details: { pool },
            },
          );
        }
        if (w > 0 && p.endpoints.length === 0) {
          throw failure(`cannot send ${w}% to pool ${pool}: it has no ready replica`, { pool });
        }
      }
      const st = await ensureRunning(await stateFile.read(), pools, signal);
      const wanted = Object.fromEntries(Object.entries(weights).filter(([, w]) => w > 0));
      const next = await apply({ ...st, weights: wanted }, pools, signal);
      await stateFile.write(next);
      await syncFileSd(pools);
      ctx.logger?.info(
        `${name}: nginx routes ${Object.entries(weights)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
      );
    });
  }

  async function retire(pool: string, ctx: OperationContext = {}): Promise<void> {
    checkPool(pool);
    return exclusive(async () => {
      throwIfAborted(ctx.signal, `${name}: retiring pool ${pool}`);
      const st = await stateFile.read();
      const weight = st.weights[pool] ?? 0;
      if (weight > 0) {
        throw failure(`pool ${pool} still has weight ${weight}; route its traffic away before retiring it`, {
          pool,
          weight,
        });
      }
      // A pool with weight 0 is not in the upstream: its replicas can stop right away.
      await backend.retire(pool, ctx);
      if (st.master) await stateFile.write({ ...st, marks: { ...st.marks, [pool]: await mark() } });
      await syncFileSd(await poolsOf(ctx));
      ctx.logger?.info(`${name}: retired pool ${pool}`);
    });
  }

  async function describe(ctx: OperationContext = {}): Promise<TargetState> {
    const [pools, st] = await Promise.all([poolsOf(ctx), stateFile.read()]);
    return {
      pools: pools.map((p) => ({ ...p, weight: st.weights[p.name] ?? 0 })),
      endpoint: (await running(st)) ? `http://${host}:${st.port}` : undefined,
    };
  }

  async function traffic(pool: string, ctx: OperationContext = {}): Promise<PoolTraffic> {
    checkPool(pool);
    if (!(await poolsOf(ctx)).some((p) => p.name === pool)) {
      throw new ConfigInvalidError(`${name}: no pool named ${pool}`, { plugin: name, details: { pool } });
    }
    const st = await stateFile.read();
    const from = st.marks[pool] ?? st.marks['*'] ?? { offset: 0, since: new Date(0).toISOString() };
    return trafficReader.figures(pool, from.offset, from.since);
  }

  return {
    name,
    describe,
    provision,
    route,
    retire,
    traffic,
    endpoint: (ctx: OperationContext = {}) =>
      exclusive(async () => {
        const st = await ensureRunning(await stateFile.read(), await poolsOf(ctx), ctx.signal);
        return `http://${host}:${st.port}`;
      }),
    resetTraffic: (pool?: string) => {
      if (pool !== undefined) checkPool(pool);
      return exclusive(async () => {
        const st = await stateFile.read();
        const at = await mark();
        await stateFile.write({
          ...st,
          marks: pool === undefined ? { '*': at } : { ...st.marks, [pool]: at },
        });
      });
    },
    close: async () => {
      await backend.close?.();
    },
    destroy: () =>
      exclusive(async () => {
        const st = await stateFile.read();
        // Only the master this target recorded, and only if its start time still matches.
        if (st.master && isAlive(st.master)) await stopMaster(st.master, opts.stopTimeoutMs);
        await backend.destroy?.();
        await stateFile.clear();
        if (opts.prometheusFileSd) await writeFileSd(opts.prometheusFileSd, []);
        await backend.close?.();
      }),
  } satisfies NginxTarget;
}
