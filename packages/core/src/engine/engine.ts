import { ConfigInvalidError } from '../errors.js';
import type { ReleaseEvent } from '../events/types.js';
import { withDeadline } from '../kit/deadline.js';
import { toLogger } from '../logger.js';
import { traceEvents } from '../observability/tracing.js';
import { boundedStore } from '../store/bounded.js';
import { servingPool } from '../strategies/restore.js';
import { createRedactor } from '../util/redact.js';
import { checkReleaseExtras, validateRecovery } from './checks.js';
import { checkVersion, type ReleaseEngineOptions, validateOptions } from './config.js';
import { watchRunControl } from './control.js';
import { dryRun } from './dry-run.js';
import { EventHub } from './events.js';
import { Fanout } from './fanout.js';
import { runRelease, runRollback } from './flows.js';
import { buildManifest } from './manifest.js';
import { createReleaseMetrics } from './metrics.js';
import { PluginCalls, pluginDeadlineDefaults } from './plugin-call.js';
import { runRecovery } from './recovery.js';
import { RunRegistry } from './registry.js';
import { headerOf, resumeRun } from './resume.js';
import { validateRollback } from './rollback-checks.js';
import { begin, type EngineContext, execute, listRuns, reportAbandoned } from './run-start.js';
import type { ReleaseEngine } from './types.js';

export { knownGoodVersions, migrationsSince } from './rollback-checks.js';

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
 * await engine.close()
 * ```
 */
export function createReleaseEngine(given: ReleaseEngineOptions): ReleaseEngine {
  validateOptions(given);
  // Every store call the engine makes is bounded (`deadlines.storeMs`): a store that hangs cannot hold a
  // run, its lock or an emergency rollback.
  const storeMs = given.deadlines?.storeMs ?? pluginDeadlineDefaults.storeMs;
  const options: ReleaseEngineOptions = {
    ...given,
    store: boundedStore(given.store, storeMs, ({ method, reason, afterMs }) => {
      logger.warn(
        `[${given.environment}] store ${given.store.name}: ${method} abandoned after ${afterMs} ms (${reason === 'deadline' ? `deadline of ${storeMs} ms passed` : 'cancelled'}); the engine no longer waits for it`,
      );
      reportAbandoned(ctx, {
        kind: 'store',
        plugin: given.store.name,
        method,
        phase: 'store',
        reason,
        afterMs,
      });
    }),
  };
  const { environment, target, store } = options;
  const redactor = createRedactor([
    ...(options.secrets ?? []),
    ...(options.notifiers ?? []).flatMap((n) => n.secrets ?? []),
  ]);
  // pino, winston or console: adapted to one call shape, every line redacted.
  const logger = toLogger(options.logger, redactor);
  const metrics = options.metrics === false ? undefined : createReleaseMetrics(options.metrics ?? {});
  const hub = new EventHub((err) => logger.warn('an event listener threw', { error: String(err) }));
  const registry = new RunRegistry();
  if ((options.verifiers ?? []).length === 0) {
    logger.warn(
      `[${environment}] no verifiers configured: analysis steps and verification pass on replica readiness alone`,
    );
  }

  const ctx: EngineContext = {
    options,
    logger,
    redactor,
    metrics,
    registry,
    knownWeights: new Set(),
    emitRaw,
    calls: new PluginCalls(options.deadlines ?? {}, logger, (call) => reportAbandoned(ctx, call)),
    // Control requests from other processes reach a run through the store once it holds its lock
    // (`control.ts`); the subscription stops before the lock is released.
    onRunLocked: (runId, lock, journal) =>
      watchRunControl(options.store, lock, {
        environment,
        runId,
        logger,
        promote: (full) => registry.promote(runId, { full }),
        abort: (reason) => registry.abort(runId, reason),
        note: (message, data) => journal.note(message, data),
      }),
  };

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
    (call, event) => reportAbandoned(ctx, call, { runId: event.runId, kind: event.kind }),
  );

  function emitRaw(event: ReleaseEvent): void {
    const safe = redactor.value(event);
    hub.emit(safe);
    fanout.publish(safe);
  }

  const closeMs = options.deadlines?.closeMs ?? pluginDeadlineDefaults.closeMs;

  const engine: ReleaseEngine = {
    environment,
    registry: metrics?.registry,

    async release(o) {
      const version = checkVersion(o?.version);
      if (o.reason !== undefined && typeof o.reason !== 'string')
        throw new ConfigInvalidError('reason must be a string');
      const extra = await checkReleaseExtras(options, logger, o, version);
      return registry.track(
        (async () => {
          const { lock, journal } = await begin(ctx, 'release', version, o.reason, {
            ...(o.labels ? { labels: o.labels } : {}),
            ...(o.migration !== undefined ? { migration: o.migration } : {}),
            ...extra,
          });
          return execute(ctx, lock, journal, runRelease, 'release', o.signal, false);
        })(),
      );
    },

    async rollback(o) {
      const migrations = await validateRollback(ctx, o);
      await registry.supersedeAll(`an emergency rollback to ${o.to}`);
      const { lock, journal } = await begin(ctx, 'rollback', o.to, o.reason, { migrations });
      return execute(ctx, lock, journal, runRollback, 'rollback', o.signal, false);
    },

    async recover(o) {
      const plan = await validateRecovery(options, ctx.calls, o);
      const { lock, journal } = await begin(ctx, 'recovery', plan.version, o.reason, { ...plan.data });
      return execute(ctx, lock, journal, runRecovery, 'recovery', o.signal, false);
    },

    async manifest(runId) {
      const entries = await store.read(runId);
      headerOf(ctx, runId, entries);
      return buildManifest(entries);
    },

    resume: (runId, o = {}) => resumeRun(ctx, runId, o),

    plan: (o) => dryRun(ctx, o),

    async status() {
      const problems: string[] = [];
      const [state, lock, listed] = await Promise.all([
        ctx.calls.call({ kind: 'target', plugin: target.name, method: 'describe', phase: 'status' }, (c) =>
          target.describe({ signal: c.signal }),
        ),
        // A lock that cannot be read is reported, not thrown: status is what an operator reads first.
        store.lockOwner(environment).catch((err: unknown) => {
          problems.push(`could not read the lock of ${environment}: ${redactor.string(String(err))}`);
          return undefined;
        }),
        listRuns(ctx),
      ]);
      if (listed.problem) problems.push(listed.problem);
      return {
        environment,
        serving: servingPool(state.pools)?.version,
        pools: state.pools,
        lock,
        interrupted: listed.runs.filter((r) => r.status === undefined && r.runId !== lock?.runId),
        lastRun: listed.runs[0],
        ...(problems.length > 0 ? { problems } : {}),
      };
    },

    history: () => store.history(environment),

    promote: (runId, o = {}) => registry.promote(runId, o),

    abort: (runId, reason = 'aborted by operator') => registry.abort(runId, reason),

    on: (type, listener) => hub.on(type, listener),
    events: (o) => hub.stream(o),

    drain: () => fanout.drain(closeMs),

    async close() {
      // Deliveries still in flight, then each notifier's own close: each wait bounded, whatever a notifier does.
      await fanout.drain(closeMs);
      await Promise.allSettled(
        (options.notifiers ?? []).map((n) =>
          n.close
            ? withDeadline(() => n.close!(), { ms: closeMs, what: `notifier ${n.name}: close` }).catch(
                (err) => logger.warn(`[${environment}] notifier ${n.name} did not close: ${String(err)}`),
              )
            : undefined,
        ),
      );
    },
  };
  if (options.tracing !== false) traceEvents(engine, options.tracing ?? {});
  return engine;
}
