import { randomBytes } from 'node:crypto';
import type { ReleaseEngineOptions } from '../engine/config.js';
import { createReleaseEngine } from '../engine/engine.js';
import { pluginDeadlineDefaults } from '../engine/plugin-call.js';
import type { ReleaseEngine } from '../engine/types.js';
import { ConfigInvalidError, RunInterruptedError, serializeError } from '../errors.js';
import type { ReleaseEvent } from '../events/types.js';
import { consoleLogger } from '../logger.js';
import { checkIdentifier, checkVersion } from '../rules.js';
import { boundedStore } from '../store/bounded.js';
import { approvePipeline } from './approve.js';
import { latestRun, pipelineHeader, pipelinePlan, pipelineStatus } from './inspect.js';
import { drive, ownerOf } from './run.js';
import { checkApproval, replay, type Stage } from './state.js';
import type { Pipeline, PipelineEvent, PipelineOptions, PipelineResult } from './types.js';
import { compileWindows } from './windows.js';

const isEngine = (e: unknown): e is ReleaseEngine =>
  typeof e === 'object' && e !== null && typeof (e as ReleaseEngine).release === 'function';

function compileStages(options: PipelineOptions, owned: ReleaseEngine[]): Stage[] {
  const { stages } = options;
  if (!Array.isArray(stages) || stages.length === 0) {
    throw new ConfigInvalidError(`pipeline ${options.name}: stages must list at least one environment`);
  }
  const names = new Set<string>();
  const envs = new Set<string>();
  const checked = stages.map((s, i) => {
    const where = `pipeline ${options.name}: stages[${i}]`;
    if (!s || typeof s !== 'object') throw new ConfigInvalidError(`${where} must be an object`);
    checkIdentifier(s.name, `${where}.name`);
    if (names.has(s.name)) throw new ConfigInvalidError(`${where}: stage name "${s.name}" is used twice`);
    names.add(s.name);
    if (!isEngine(s.engine) && (typeof s.engine !== 'object' || s.engine === null)) {
      throw new ConfigInvalidError(`${where}.engine must be a release engine or its options`);
    }
    const soakMs = s.soakMs ?? 0;
    if (!Number.isInteger(soakMs) || soakMs < 0)
      throw new ConfigInvalidError(`${where}.soakMs must be an integer ≥ 0`);
    if (i === 0 && soakMs > 0)
      throw new ConfigInvalidError(`${where}: the first stage has no previous stage to soak in`);
    const expectedDurationMs = s.expectedDurationMs ?? 0;
    if (!Number.isInteger(expectedDurationMs) || expectedDurationMs < 0) {
      throw new ConfigInvalidError(`${where}.expectedDurationMs must be an integer ≥ 0`);
    }
    const windows = compileWindows(s.windows, where);
    const approval = checkApproval(s.approval, where);
    const target = s.target ?? (isEngine(s.engine) ? undefined : (s.engine as ReleaseEngineOptions).target);
    if (s.verify !== undefined) {
      const v = s.verify;
      if (!v || !Array.isArray(v.verifiers) || v.verifiers.length === 0) {
        throw new ConfigInvalidError(`${where}.verify.verifiers must list at least one verifier`);
      }
      for (const f of v.verifiers) {
        if (!f || typeof f.name !== 'string' || typeof f.verify !== 'function') {
          throw new ConfigInvalidError(`${where}.verify: every verifier needs a name and verify()`);
        }
      }
      if (!target)
        throw new ConfigInvalidError(
          `${where}.verify needs the stage's target: pass \`target\` beside the engine`,
        );
    }
    return { s, soakMs, expectedDurationMs, windows, approval, target };
  });
  for (const { s } of checked) {
    const env = isEngine(s.engine) ? s.engine.environment : (s.engine as ReleaseEngineOptions).environment;
    if (envs.has(env)) {
      throw new ConfigInvalidError(`pipeline ${options.name}: environment "${env}" is in two stages`);
    }
    envs.add(env);
  }
  // Engines are created only once every stage is valid: bad input changes nothing.
  try {
    return checked.map(({ s, soakMs, expectedDurationMs, windows, approval, target }) => {
      let engine: ReleaseEngine;
      if (isEngine(s.engine)) engine = s.engine;
      else {
        engine = createReleaseEngine(s.engine);
        owned.push(engine);
      }
      return {
        name: s.name,
        engine,
        target,
        soakMs,
        approval,
        windows,
        verify: s.verify,
        expectedDurationMs,
      };
    });
  } catch (err) {
    // An engine's own options were refused: close the ones already made for this pipeline.
    for (const e of owned.splice(0)) void e.close().catch(() => undefined);
    throw err;
  }
}

/**
 * An ordered promotion of one version through environments (staging → production), each with its own
 * engine, and per stage a soak time, N-of-M approvals, promotion windows and freezes, and extra gates.
 * The pipeline's state lives in `store` under the environment `pipeline.<name>`: a run journal written
 * under a lease with fencing, and approvals sent as `approve` control requests by any process. A killed
 * process is continued by calling `promote(version)` or `resume()` again, on any host.
 *
 * @example
 * ```ts
 * const pipeline = createPipeline({
 *   name: 'search',
 *   store: fileStore({ dir: '.codegraph-release' }),
 *   stages: [
 *     { name: 'staging', engine: stagingEngine },
 *     { name: 'production', engine: productionEngine, soakMs: 3_600_000,
 *       approval: { required: 2, approvers: ['alice', 'bob', 'carol'] },
 *       windows: [{ action: 'allow', cron: '0 9 * * 1-4', durationMs: 7 * 3_600_000, timeZone: 'Europe/Berlin' }] },
 *   ],
 * })
 * const result = await pipeline.promote('v1.4.0') // waits for soak, a window and two approvals
 * // elsewhere: await pipeline.approve({ stage: 'production', version: 'v1.4.0', by: 'alice' })
 * ```
 */
export function createPipeline(options: PipelineOptions): Pipeline {
  if (!options || typeof options !== 'object')
    throw new ConfigInvalidError('createPipeline needs an options object');
  checkIdentifier(options.name, 'pipeline name');
  const given = options.store;
  if (!given || typeof given.append !== 'function' || typeof given.watchControl !== 'function') {
    throw new ConfigInvalidError(`pipeline ${options.name}: store must be a Store (e.g. fileStore({ dir }))`);
  }
  const storeMs = options.storeMs ?? pluginDeadlineDefaults.storeMs;
  if (!Number.isFinite(storeMs) || storeMs <= 0) {
    throw new ConfigInvalidError(`pipeline ${options.name}: storeMs must be a number of milliseconds > 0`);
  }
  // Every store call is bounded: a store that stops answering cannot hold the pipeline or its lease.
  const store = boundedStore(given, storeMs, ({ method, afterMs }) =>
    logger.warn(
      `pipeline ${options.name}: store ${given.name}: ${method} abandoned after ${afterMs} ms; the pipeline no longer waits for it`,
    ),
  );
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    throw new ConfigInvalidError(`pipeline ${options.name}: clock must be a function returning a Date`);
  }
  const checkEveryMs = options.checkEveryMs ?? 5_000;
  if (!Number.isInteger(checkEveryMs) || checkEveryMs < 10) {
    throw new ConfigInvalidError(`pipeline ${options.name}: checkEveryMs must be an integer ≥ 10`);
  }
  for (const n of options.notifiers ?? []) {
    if (!n || typeof n.notify !== 'function')
      throw new ConfigInvalidError(`pipeline ${options.name}: every notifier needs notify()`);
  }
  const owned: ReleaseEngine[] = [];
  const stages = compileStages(options, owned);
  const name = options.name;
  const environment = `pipeline.${name}`;
  const logger = options.logger ?? consoleLogger();
  const clock = options.clock ?? (() => new Date());
  const listeners = new Map<string, Set<(e: PipelineEvent) => void>>();
  let activeRun: string | undefined;
  const deliveries = new Set<Promise<void>>();
  const startedAt = new Map<string, number>();

  const emit = (event: PipelineEvent) => {
    for (const key of [event.type, '*']) {
      for (const l of listeners.get(key) ?? []) {
        try {
          l(event);
        } catch (err) {
          logger.warn(`pipeline listener failed on ${event.type}`, { error: serializeError(err) });
        }
      }
    }
    if (event.type === 'pipeline.started' || event.type === 'pipeline.finished') notify(event);
  };

  // Notifiers hear the pipeline as a run of kind `pipeline`; each delivery is bounded and isolated.
  function notify(event: PipelineEvent & { type: 'pipeline.started' | 'pipeline.finished' }) {
    const base = { runId: event.runId, environment, kind: 'pipeline' as const, time: event.time };
    if (event.type === 'pipeline.started') startedAt.set(event.runId, Date.now());
    const began = startedAt.get(event.runId) ?? Date.now();
    const release: ReleaseEvent =
      event.type === 'pipeline.started'
        ? { ...base, type: 'run.started', version: event.version, resumed: event.resumed }
        : {
            ...base,
            type: 'run.finished',
            status: event.status,
            version: event.version,
            serving: event.status === 'succeeded' ? event.version : undefined,
            reason: event.reason ?? (event.reached ? `reached ${event.reached}` : undefined),
            durationMs: Date.now() - began,
          };
    for (const n of options.notifiers ?? []) {
      if (n.events && !n.events.includes(release.type)) continue;
      const signal = AbortSignal.timeout(10_000);
      const p = Promise.race([
        n.notify(release, { signal, logger }),
        new Promise<void>((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
        ),
      ])
        .catch((err) =>
          logger.warn(`notifier ${n.name} failed on ${release.type}`, { error: serializeError(err) }),
        )
        .finally(() => deliveries.delete(p));
      deliveries.add(p);
    }
  }

  for (const stage of stages) {
    stage.engine.on('*', (event) => {
      if (activeRun)
        emit({
          type: 'pipeline.stage.event',
          stage: stage.name,
          event,
          pipeline: name,
          runId: activeRun,
          time: event.time,
        });
    });
  }

  const ctx = {
    name,
    environment,
    stages,
    store,
    logger,
    clock,
    checkEveryMs,
    emit,
    setActiveRun: (id: string | undefined) => {
      activeRun = id;
    },
  };

  async function unfinished() {
    const state = await latestRun(store, environment);
    return state && !state.finished ? state : undefined;
  }

  async function start(
    version: string | undefined,
    signal?: AbortSignal,
    reason?: string,
  ): Promise<PipelineResult> {
    const open = await unfinished();
    if (open && version !== undefined && open.header.version !== version) {
      throw new RunInterruptedError(
        `pipeline ${name} is still promoting ${open.header.version} (run ${open.header.runId}); resume it, or abort it, before promoting ${version}`,
        { details: { runId: open.header.runId, version: open.header.version } },
      );
    }
    if (!open && version === undefined) {
      throw new ConfigInvalidError(`pipeline ${name} has no unfinished run to resume`);
    }
    const runId = open
      ? open.header.runId
      : `pl-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    const lock = await store.lock(environment, ownerOf(runId));
    let result: PipelineResult;
    try {
      let state = open;
      if (state) {
        // Read again under the lease: another process may have moved it on before we took it.
        state = replay(await store.read(runId));
        if (state.finished)
          throw new RunInterruptedError(`pipeline run ${runId} finished meanwhile; promote again`);
      } else {
        // Real time: runs are ordered by it; the pipeline's clock judges only soak, windows and expiry.
        const header = pipelineHeader(runId, environment, version!, stages, new Date().toISOString(), reason);
        await store.append(runId, { type: 'run', header }, { environment, token: lock.token });
        state = replay(await store.read(runId));
      }
      result = await drive(ctx, lock, state, open !== undefined, signal);
    } finally {
      await lock.release().catch(() => undefined);
    }
    // Emitted once the lease is let go of, so whoever hears it can promote the next version at once.
    emit({
      type: 'pipeline.finished',
      pipeline: name,
      runId,
      time: clock().toISOString(),
      version: result.version,
      status: result.status,
      reached: result.reached,
      reason: result.reason,
    });
    await Promise.allSettled([...deliveries]);
    return result;
  }

  const pipeline: Pipeline = {
    name,
    environment,
    stages: stages.map((s) => ({ name: s.name, engine: s.engine })),
    async promote(version, opts = {}) {
      checkVersion(version, 'pipeline version');
      return start(version, opts.signal, opts.reason);
    },
    async resume(opts = {}) {
      return start(undefined, opts.signal);
    },
    status: () => pipelineStatus(name, environment, stages, store, clock()),
    async plan(version, opts = {}) {
      checkVersion(version, 'pipeline version');
      return pipelinePlan(name, stages, version, clock(), opts.signal);
    },
    approve: ({ stage, version, by, timeoutMs }) =>
      approvePipeline(store, { pipeline: name, stage, version, by, ...(timeoutMs ? { timeoutMs } : {}) }),
    async rollback(stageName, opts) {
      const stage = stages.find((s) => s.name === stageName);
      if (!stage) throw new ConfigInvalidError(`pipeline ${name} has no stage "${stageName}"`);
      // Windows never block an emergency rollback; the engine checks its confirmation.
      return stage.engine.rollback(opts);
    },
    on(type, listener) {
      const set = listeners.get(type) ?? new Set();
      listeners.set(type, set);
      const l = listener as (e: PipelineEvent) => void;
      set.add(l);
      return () => set.delete(l);
    },

    async close() {
      await Promise.allSettled([...deliveries]);
      for (const e of owned) await e.close();
      for (const n of options.notifiers ?? []) await n.close?.().catch(() => undefined);
    },
  };
  return pipeline;
}
