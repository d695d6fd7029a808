import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { AnalysisResult } from '../analysis/types.js';
import {
  AbortedError,
  ConfigInvalidError,
  RollbackUnconfirmedError,
  RunInterruptedError,
  VersionUnknownError,
} from '../errors.js';
import type { ReleaseEvent, RunKind } from '../events/types.js';
import { silentLogger } from '../logger.js';
import { isStepsRecord } from '../migrations/steps.js';
import type { HistoryEntry, RunHeader } from '../store/types.js';
import { servingPool } from '../strategies/restore.js';
import type { Action, ActionOutcome } from '../strategies/types.js';
import { createRedactor } from '../util/redact.js';
import { type ActionEnv, describeAction } from './actions.js';
import { checkReleaseExtras, validateRecovery } from './checks.js';
import { checkVersion, type ReleaseEngineOptions, validateOptions } from './config.js';
import { EventHub } from './events.js';
import { Fanout } from './fanout.js';
import { runRelease, runRollback } from './flows.js';
import { Journal } from './journal.js';
import { buildManifest, writeManifest } from './manifest.js';
import { createReleaseMetrics } from './metrics.js';
import { runRecovery } from './recovery.js';
import type { FlowDeps } from './run-scope.js';
import type { Plan, ReleaseEngine, RunResult } from './types.js';

const newRunId = (environment: string) =>
  `${environment}-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;

/** Versions the history knows as released and good: what a successful run left serving. */
export function knownGoodVersions(history: readonly HistoryEntry[]): Set<string> {
  const good = new Set<string>();
  for (const h of history) if (h.status === 'succeeded' && h.serving) good.add(h.serving);
  return good;
}

/**
 * Creates the release engine for one environment. Options are validated first: a bad option is a
 * `CG_CONFIG_INVALID` error before anything runs.
 *
 * @example
 * ```ts
 * import { createReleaseEngine, fileStore, httpValidation, localTarget, rolling } from '@codegraph/release-core'
 *
 * const engine = createReleaseEngine({
 *   environment: 'staging',
 *   target: localTarget({ stateDir: '.release/local', command: ({ version, port }) => ({ command: 'codegraph-api', args: ['--port', String(port)] }) }),
 *   strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
 *   verifiers: [httpValidation()],
 *   store: fileStore({ dir: '.release' }),
 * })
 * const result = await engine.release({ version: 'v1.2.3' })
 * if (result.status !== 'succeeded') process.exitCode = 1
 * ```
 */
export function createReleaseEngine(options: ReleaseEngineOptions): ReleaseEngine {
  validateOptions(options);
  const { environment, target, strategy, store } = options;
  const logger = options.logger ?? silentLogger;
  const redactor = createRedactor(options.secrets ?? []);
  const metrics = options.metrics === false ? undefined : createReleaseMetrics(options.metrics ?? {});
  const hub = new EventHub((err) => logger.warn('an event listener threw', { error: String(err) }));
  // Runs of this engine still executing (releases and resumes), so an emergency rollback can supersede them.
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    return p.finally(() => inFlight.delete(p));
  };
  const active = new Map<
    string,
    { abort: AbortController; approvals: Array<(full: boolean) => void>; approved: number; full: boolean }
  >();
  const knownWeights = new Set<string>();
  if ((options.verifiers ?? []).length === 0) {
    logger.warn(
      `[${environment}] no verifiers configured: analysis steps and verification pass on replica readiness alone`,
    );
  }

  const fanout = new Fanout(
    options.notifiers ?? [],
    options.delivery ?? {},
    logger,
    redactor,
    (notifier, event, error) => {
      metrics?.notificationFailures.inc({ environment, notifier: notifier.name });
      logger.warn(`[${environment}] ${error.message}`);
      emitRaw({
        type: 'notification.failed',
        runId: event.runId,
        environment,
        kind: event.kind,
        time: new Date().toISOString(),
        notifier: notifier.name,
        eventType: event.type,
        error: redactor.value(error.toJSON()),
      });
    },
  );

  function emitRaw(event: ReleaseEvent): void {
    const safe = redactor.value(event);
    hub.emit(safe);
    fanout.publish(safe);
  }

  const deps = (journal: Journal, kind: RunKind, userSignal: AbortSignal | undefined): FlowDeps => {
    let entry = active.get(journal.runId);
    if (!entry) {
      entry = { abort: new AbortController(), approvals: [], approved: 0, full: false };
      active.set(journal.runId, entry);
    }
    const run = entry;
    const signal = userSignal ? AbortSignal.any([userSignal, run.abort.signal]) : run.abort.signal;
    const env: ActionEnv = {
      environment,
      target,
      verifiers: options.verifiers ?? [],
      logger,
      retry: options.retry,
      waitForApproval: (s) =>
        new Promise((resolve, reject) => {
          if (s.aborted) return reject(s.reason);
          if (run.full) return resolve({ full: true });
          if (run.approved > 0) {
            run.approved--;
            return resolve({ full: false });
          }
          const onAbort = () => reject(s.reason);
          s.addEventListener('abort', onAbort, { once: true });
          run.approvals.push((full) => {
            s.removeEventListener('abort', onAbort);
            resolve({ full });
          });
        }),
      onWeights: (weights) => {
        for (const pool of Object.keys(weights)) knownWeights.add(pool);
        for (const pool of knownWeights) metrics?.weight.set({ environment, pool }, weights[pool] ?? 0);
        emit(journal, kind, { type: 'traffic.shifted', weights });
      },
      onAnalysis: (result, version) => {
        metrics?.verdicts.inc({ environment, verdict: result.verdict });
        const line = `[${environment}] analysis ${result.name} of ${version}: ${result.verdict} (${result.reason})`;
        if (result.verdict === 'pass') logger.info(line);
        else logger.warn(line);
        emit(journal, kind, { type: 'analysis.finished', version, result });
      },
      onMeasured: async (check, version) => {
        emit(journal, kind, { type: 'analysis.measured', version, ...check });
        await journal.note('analysis.measured', { version, ...check });
      },
    };
    // A finished run is only reported again: its replay touches nothing, so it tells nobody either.
    const quiet = journal.replayOnly;
    return {
      options,
      env,
      journal,
      logger: quiet ? silentLogger : logger,
      redactor,
      metrics: quiet ? undefined : metrics,
      signal,
      emit: quiet ? () => {} : (e) => emit(journal, kind, e),
    };
  };

  type Emittable = ReleaseEvent extends infer E
    ? E extends ReleaseEvent
      ? Omit<E, 'runId' | 'environment' | 'kind' | 'time'>
      : never
    : never;
  function emit(journal: Journal, kind: RunKind, e: Emittable): void {
    emitRaw({
      ...e,
      runId: journal.runId,
      environment,
      kind,
      time: new Date().toISOString(),
    } as ReleaseEvent);
  }

  async function begin(
    kind: RunKind,
    version: string,
    reason: string | undefined,
    data: Record<string, unknown>,
  ) {
    const runId = newRunId(environment);
    const lock = await store.lock(environment, {
      runId,
      pid: process.pid,
      host: hostname(),
      since: new Date().toISOString(),
    });
    try {
      const interrupted = (await store.runs(environment)).filter(
        (r) => r.status === undefined && r.runId !== runId,
      );
      if (interrupted.length > 0 && kind === 'release') {
        throw new RunInterruptedError(
          `run ${interrupted[0]!.runId} of ${environment} was interrupted; call resume("${interrupted[0]!.runId}") or an emergency rollback before releasing again`,
          { details: { runs: interrupted.map((r) => r.runId) } },
        );
      }
      const header: RunHeader = {
        runId,
        kind,
        environment,
        version,
        reason: reason === undefined ? undefined : redactor.string(reason),
        startedAt: new Date().toISOString(),
        strategy: strategy.name,
        target: target.name,
        data: redactor.value(data),
      };
      await store.append(runId, { type: 'run', header });
      for (const r of interrupted) {
        await store.append(r.runId, {
          type: 'finished',
          status: 'superseded',
          reason: `superseded by ${kind} ${runId}`,
        });
      }
      return { lock, journal: new Journal(header, store, redactor) };
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  async function finishRun(journal: Journal, result: Promise<RunResult>): Promise<RunResult> {
    try {
      const out = await result;
      if (options.manifestDir) {
        await writeManifest(options.manifestDir, buildManifest(await store.read(journal.runId))).catch(
          (err) =>
            logger.warn(`[${environment}] could not write the manifest of ${journal.runId}: ${String(err)}`),
        );
      }
      return out;
    } finally {
      active.delete(journal.runId);
      await fanout.drain();
    }
  }

  async function validateRollback(o: Parameters<ReleaseEngine['rollback']>[0]) {
    if (o?.confirm !== 'CONFIRM') {
      throw new RollbackUnconfirmedError(
        "an emergency rollback needs confirm: 'CONFIRM' (exactly, in capitals); nothing was changed",
      );
    }
    checkVersion(o.to, 'rollback target');
    if (typeof o.reason !== 'string' || o.reason.trim() === '') {
      throw new ConfigInvalidError(
        'an emergency rollback needs a reason for the incident report; nothing was changed',
      );
    }
    const history = await store.history(environment);
    const good = knownGoodVersions(history);
    if (!good.has(o.to) && !(options.knownVersions ?? []).includes(o.to)) {
      const list = [...good].join(', ') || 'none yet';
      throw new VersionUnknownError(
        `version ${o.to} is not known as released and good in ${environment} (known: ${list}); nothing was changed`,
      );
    }
    const migrations = migrationsSince(history, o.to);
    const catalog = new Set((options.migrations ?? []).map((m) => m.name));
    const undoable = migrations.every((m) => isStepsRecord(m) && m.steps.every((s) => catalog.has(s.name)));
    if (migrations.length > 0 && !options.databaseRollback && !undoable) {
      throw new ConfigInvalidError(
        `releases after ${o.to} recorded ${migrations.length} migration(s) but the engine has no databaseRollback hook; add one so the schema can be rolled back; nothing was changed`,
      );
    }
    return migrations;
  }

  const engine: ReleaseEngine = {
    environment,

    async release(o) {
      const version = checkVersion(o?.version);
      if (o.reason !== undefined && typeof o.reason !== 'string')
        throw new ConfigInvalidError('reason must be a string');
      const extra = await checkReleaseExtras(options, logger, o, version);
      return track(
        (async () => {
          const { lock, journal } = await begin('release', version, o.reason, {
            ...(o.labels ? { labels: o.labels } : {}),
            ...(o.migration !== undefined ? { migration: o.migration } : {}),
            ...extra,
          });
          try {
            return await finishRun(journal, runRelease(deps(journal, 'release', o.signal), false));
          } finally {
            await lock.release();
          }
        })(),
      );
    },

    async rollback(o) {
      const migrations = await validateRollback(o);
      // An emergency does not wait for a release of this engine to finish: abort it (it undoes itself), then roll back.
      if (inFlight.size > 0) {
        for (const [id, run] of active) {
          run.abort.abort(new AbortedError(`run ${id} superseded by an emergency rollback to ${o.to}`));
        }
        await Promise.allSettled([...inFlight]);
      }
      const { lock, journal } = await begin('rollback', o.to, o.reason, { migrations });
      try {
        return await finishRun(journal, runRollback(deps(journal, 'rollback', o.signal), false));
      } finally {
        await lock.release();
      }
    },

    async recover(o) {
      const plan = await validateRecovery(options, o);
      const { lock, journal } = await begin('recovery', plan.version, o.reason, { ...plan.data });
      try {
        return await finishRun(journal, runRecovery(deps(journal, 'recovery', o.signal), false));
      } finally {
        await lock.release();
      }
    },

    async manifest(runId) {
      const entries = await store.read(runId);
      const head = entries.find((e) => e.type === 'run');
      if (head?.type !== 'run' || head.header.environment !== environment)
        throw new ConfigInvalidError(`run ${runId} does not belong to environment ${environment}`);
      return buildManifest(entries);
    },

    async resume(runId, o = {}) {
      const entries = await store.read(runId);
      const head = entries.find((e) => e.type === 'run');
      if (head?.type !== 'run' || head.header.environment !== environment) {
        throw new ConfigInvalidError(`run ${runId} does not belong to environment ${environment}`);
      }
      const end = entries.findLast((e) => e.type === 'finished');
      if (end?.type === 'finished' && end.status === 'superseded') {
        const h = head.header;
        const finishedAt = end.time;
        return {
          runId,
          kind: h.kind,
          environment,
          status: 'superseded',
          version: h.version,
          reason: end.reason,
          analyses: [],
          startedAt: h.startedAt,
          finishedAt,
          durationMs: Date.parse(finishedAt) - Date.parse(h.startedAt),
        } satisfies RunResult;
      }
      const header = head.header;
      // Replaying a journal with another strategy or target would take other actions than the ones recorded.
      if (header.strategy !== strategy.name || header.target !== target.name) {
        throw new ConfigInvalidError(
          `run ${runId} was started with strategy ${header.strategy} on target ${header.target}; resume it with an engine configured the same way (this one has ${strategy.name} on ${target.name})`,
        );
      }
      return track(
        (async () => {
          const owner = { runId, pid: process.pid, host: hostname(), since: new Date().toISOString() };
          const lock = await store.lock(environment, owner);
          try {
            const journal = new Journal(header, store, redactor, await store.read(runId));
            const kind = header.kind;
            const flow = kind === 'rollback' ? runRollback : kind === 'recovery' ? runRecovery : runRelease;
            return await finishRun(journal, flow(deps(journal, kind, o.signal), true));
          } finally {
            await lock.release();
          }
        })(),
      );
    },

    async plan(o) {
      const version = checkVersion(o?.version);
      const state = await target.describe(o.signal ? { signal: o.signal } : {});
      const stable = servingPool(state.pools);
      const replicas = options.replicas ?? stable?.replicas ?? 2;
      const actions: Action[] = [];
      const gen = strategy.deploy({ version, stable, state, replicas });
      let next = gen.next();
      while (!next.done) {
        const a = next.value;
        actions.push(a);
        next = gen.next(simulate(a));
      }
      return {
        environment,
        version,
        from: stable?.version,
        strategy: strategy.name,
        replicas,
        actions,
        steps: actions.map(describeAction),
        ...(strategy.summarize ? { summary: strategy.summarize({ version, actions }) } : {}),
      } satisfies Plan;
    },

    async status() {
      const [state, lock, runs] = await Promise.all([
        target.describe(),
        store.lockOwner(environment),
        store.runs(environment),
      ]);
      return {
        environment,
        serving: servingPool(state.pools)?.version,
        pools: state.pools,
        lock,
        interrupted: runs.filter((r) => r.status === undefined && r.runId !== lock?.runId),
        lastRun: runs[0],
      };
    },

    history: () => store.history(environment),

    promote(runId, o = {}) {
      let any = false;
      for (const [id, run] of active) {
        if (runId && id !== runId) continue;
        any = true;
        if (o.full) run.full = true;
        const waiter = run.approvals.shift();
        if (waiter) waiter(run.full);
        else run.approved++;
      }
      return any;
    },

    abort(runId, reason = 'aborted by operator') {
      let any = false;
      for (const [id, run] of active) {
        if (runId && id !== runId) continue;
        any = true;
        run.abort.abort(new AbortedError(`run ${id} aborted by operator: ${reason}`));
      }
      return any;
    },

    on: (type, listener) => hub.on(type, listener),
    events: (o) => hub.stream(o),

    async close() {
      await fanout.drain();
      await Promise.allSettled((options.notifiers ?? []).map((n) => n.close?.()));
    },
  };
  return engine;
}

/** The outcome a dry run assumes for each action: everything passes and is ready. */
function simulate(action: Action): ActionOutcome {
  switch (action.type) {
    case 'provision':
      return {
        name: action.pool,
        version: action.version,
        replicas: action.replicas,
        ready: action.replicas,
        weight: 0,
        endpoints: [],
      };
    case 'route':
      return { weights: action.weights };
    case 'analyze':
      return {
        name: action.name,
        verdict: 'pass',
        reason: 'dry run',
        measurements: [],
      } satisfies AnalysisResult;
    case 'pause':
      return { resumedBy: 'skip' };
    case 'promote':
      return { pool: action.pool, version: '' };
    case 'retire':
      return { pool: action.pool };
  }
}

/** Migration records of the releases that succeeded after `to` last served, newest first. */
export function migrationsSince(history: readonly HistoryEntry[], to: string): unknown[] {
  const out: unknown[] = [];
  for (let i = history.length - 1; i >= 0; i--) {
    const h = history[i]!;
    if (h.serving === to && h.status === 'succeeded') break;
    if (h.kind === 'release' && h.status === 'succeeded' && h.migration !== undefined) out.push(h.migration);
  }
  return out;
}
