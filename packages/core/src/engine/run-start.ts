import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { LockLostError, ReleaseError, RunInterruptedError } from '../errors.js';
import type { ReleaseEvent, RunKind } from '../events/types.js';
import { processStartTime } from '../kit/process.js';
import { type Logger, silentLogger } from '../logger.js';
import type { Lock, LockOwner, RunHeader, RunSummary } from '../store/types.js';
import type { Redactor } from '../util/redact.js';
import { type ActionEnv, boundVerifiers } from './actions.js';
import type { ReleaseEngineOptions } from './config.js';
import { lockSuperseding } from './control.js';
import type { EventInput } from './events.js';
import { Journal, RunGuard } from './journal.js';
import { buildManifest, writeManifest } from './manifest.js';
import type { ReleaseMetrics } from './metrics.js';
import { type AbandonedCall, PluginCalls } from './plugin-call.js';
import type { RunRegistry } from './registry.js';
import type { RunData } from './run-data.js';
import type { FlowDeps } from './run-scope.js';
import type { RunResult } from './types.js';

/** What every part of one engine shares: its options, logger, redactor, metrics, events and runs. */
export interface EngineContext {
  options: ReleaseEngineOptions;
  logger: Logger;
  redactor: Redactor;
  metrics: ReleaseMetrics | undefined;
  registry: RunRegistry;
  /** Pools that ever had a weight, so the weight gauge goes back to 0 for pools that left. */
  knownWeights: Set<string>;
  /** Publishes an event (redacted) to listeners and notifiers. */
  emitRaw(event: ReleaseEvent): void;
  /** Plugin calls outside any run (status, plan, checks before a run), each bounded. */
  calls: PluginCalls;
  /**
   * Called once a run holds the lock and before its flow starts; returns what to call when it ends.
   * The seam where control requests from other processes reach the run (see `control.ts`).
   */
  onRunLocked?: ((runId: string, lock: Lock, journal: Journal) => Promise<() => Promise<void>>) | undefined;
}

const newRunId = (environment: string) =>
  `${environment}-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;

/** Who takes the lock: this process, told apart from a later one that reuses its PID. */
export function lockOwner(runId: string): LockOwner {
  return {
    runId,
    pid: process.pid,
    host: hostname(),
    since: new Date().toISOString(),
    processStart: processStartTime(process.pid),
  };
}

/** Emits an event of a run. */
export function emitFor(ctx: EngineContext, runId: string, kind: RunKind, e: EventInput): void {
  ctx.emitRaw({
    ...e,
    runId,
    environment: ctx.options.environment,
    kind,
    time: new Date().toISOString(),
  } as ReleaseEvent);
}

/** Reports a plugin call the engine stopped waiting for: a log line, a metric, and an event of its run. */
export function reportAbandoned(
  ctx: EngineContext,
  call: AbandonedCall,
  run?: { runId: string; kind: RunKind },
): void {
  const environment = ctx.options.environment;
  ctx.metrics?.abandonedCalls.inc({ environment, kind: call.kind, plugin: call.plugin, method: call.method });
  if (!run) return;
  emitFor(ctx, run.runId, run.kind, {
    type: 'plugin.abandoned',
    pluginKind: call.kind,
    plugin: call.plugin,
    method: call.method,
    phase: call.phase,
    reason: call.reason,
    afterMs: call.afterMs,
  });
}

/**
 * The environment's runs, read so that damage never blocks: a store that cannot list them (a torn or
 * garbage line in some journal) is reported as a problem and the listing is empty, so an emergency
 * rollback, a release and `status` still proceed.
 */
export async function listRuns(ctx: EngineContext): Promise<{ runs: RunSummary[]; problem?: string }> {
  try {
    return { runs: await ctx.options.store.runs(ctx.options.environment) };
  } catch (err) {
    const problem = `could not list the runs of ${ctx.options.environment} (${ctx.redactor.string(err instanceof Error ? err.message : String(err))}); a damaged journal is left as it is`;
    ctx.logger.warn(`[${ctx.options.environment}] ${problem}`);
    return { runs: [], problem };
  }
}

/** What a run's flow needs: the action environment wired to this run's events, approvals and guard. */
export function flowDeps(
  ctx: EngineContext,
  journal: Journal,
  kind: RunKind,
  userSignal: AbortSignal | undefined,
): FlowDeps {
  const { options, logger, metrics } = ctx;
  const environment = options.environment;
  const run = ctx.registry.enter(journal.runId);
  const guard = journal.guard;
  // The run stops at its next step when the caller cancels, an operator aborts, or the lease or store is lost.
  const signal = AbortSignal.any([run.abort.signal, guard.signal, ...(userSignal ? [userSignal] : [])]);
  // A finished run is only reported again: its replay touches nothing, so it tells nobody either.
  const quiet = journal.replayOnly;
  const emit = quiet ? () => {} : (e: EventInput) => emitFor(ctx, journal.runId, kind, e);
  const calls = new PluginCalls(
    options.deadlines ?? {},
    logger,
    (call) => reportAbandoned(ctx, call, quiet ? undefined : { runId: journal.runId, kind }),
    guard.signal,
  );
  const env: ActionEnv = {
    environment,
    target: options.target,
    verifiers: boundVerifiers(options.verifiers ?? [], calls),
    logger,
    retry: options.retry,
    calls,
    waitForApproval: (s) => ctx.registry.waitForApproval(run, s),
    onWeights: (weights) => {
      for (const pool of Object.keys(weights)) ctx.knownWeights.add(pool);
      for (const pool of ctx.knownWeights) metrics?.weight.set({ environment, pool }, weights[pool] ?? 0);
      emit({ type: 'traffic.shifted', weights });
    },
    onAnalysis: (result, version) => {
      metrics?.verdicts.inc({ environment, verdict: result.verdict });
      const line = `[${environment}] analysis ${result.name} of ${version}: ${result.verdict} (${result.reason})`;
      if (result.verdict === 'pass') logger.info(line);
      else logger.warn(line);
      emit({ type: 'analysis.finished', version, result });
    },
    // Every measurement is an event as it is taken, and a journal note, so another shell can follow it.
    onMeasured: async (check, version) => {
      emit({ type: 'analysis.measured', version, ...check });
      if (!quiet) await journal.note('analysis.measured', { version, ...check });
    },
  };
  return {
    options,
    env,
    journal,
    logger: quiet ? silentLogger : logger,
    redactor: ctx.redactor,
    metrics: quiet ? undefined : metrics,
    signal,
    emit,
  };
}

/** A run's journal under a lease: every write carries the lock's fence, and losing the lease stops it. */
export function guardedJournal(
  ctx: EngineContext,
  header: RunHeader,
  lock: Lock,
  entries?: Parameters<typeof buildManifest>[0],
): Journal {
  const guard = new RunGuard({ environment: lock.environment, token: lock.token });
  const onLost = () =>
    guard.stop(
      lock.lost.reason instanceof ReleaseError
        ? lock.lost.reason
        : new LockLostError(
            `run ${header.runId} lost its lease on ${header.environment}; it stopped acting on the target: resume it from the process that holds the lease, or roll back`,
            { cause: lock.lost.reason },
          ),
    );
  if (lock.lost.aborted) onLost();
  else lock.lost.addEventListener('abort', onLost, { once: true });
  return new Journal(header, ctx.options.store, ctx.redactor, entries, guard);
}

/**
 * Starts a run: takes the lock, checks for interrupted runs (a release is refused while one exists; a
 * rollback or recovery supersedes them), journals the header. Nothing a damaged journal does blocks it.
 */
export async function begin(
  ctx: EngineContext,
  kind: RunKind,
  version: string,
  reason: string | undefined,
  data: RunData,
): Promise<{ lock: Lock; journal: Journal }> {
  const { options, redactor, logger } = ctx;
  const { environment, store } = options;
  const runId = newRunId(environment);
  // An emergency rollback asks a run of another process holding the environment to step aside.
  const lock =
    kind === 'rollback'
      ? await lockSuperseding(store, environment, lockOwner(runId), {
          reason: redactor.string(reason ?? ''),
          logger,
        })
      : await store.lock(environment, lockOwner(runId));
  try {
    const listed = await listRuns(ctx);
    const interrupted = listed.runs.filter((r) => r.status === undefined && r.runId !== runId);
    if (interrupted.length > 0 && kind === 'release') {
      throw new RunInterruptedError(
        `run ${interrupted[0]!.runId} of ${environment} was interrupted; resume run ${interrupted[0]!.runId} (\`codegraph-release resume ${interrupted[0]!.runId}\`, or engine.resume) or roll back in an emergency before releasing again`,
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
      strategy: options.strategy.name,
      target: options.target.name,
      data: redactor.value(data),
    };
    const journal = guardedJournal(ctx, header, lock);
    await journal.open();
    if (listed.problem) await journal.note(listed.problem);
    for (const r of interrupted) {
      // A damaged journal that refuses the line stays as it is: reported, never in the way.
      await store
        .append(
          r.runId,
          { type: 'finished', status: 'superseded', reason: `superseded by ${kind} ${runId}` },
          journal.guard.fence,
        )
        .catch(async (err: unknown) => {
          journal.guard.check();
          const problem = `could not mark run ${r.runId} superseded: ${err instanceof Error ? err.message : String(err)}`;
          logger.warn(`[${environment}] ${problem}`);
          await journal.note(problem);
        });
    }
    return { lock, journal };
  } catch (err) {
    await lock.release().catch(() => {});
    throw err;
  }
}

/**
 * Runs a flow under the lock and releases the lock as soon as the run's own work is journaled.
 * Notifier deliveries go on without it (`close()` waits for them); a run that lost its lease or its
 * store ends with that typed error.
 */
export async function execute(
  ctx: EngineContext,
  lock: Lock,
  journal: Journal,
  flow: (d: FlowDeps, resumed: boolean) => Promise<RunResult>,
  kind: RunKind,
  userSignal: AbortSignal | undefined,
  resumed: boolean,
): Promise<RunResult> {
  const { options, logger } = ctx;
  let stopControl: (() => Promise<void>) | undefined;
  try {
    stopControl = await ctx.onRunLocked?.(journal.runId, lock, journal);
    const result = await flow(flowDeps(ctx, journal, kind, userSignal), resumed).catch((err: unknown) => {
      // Whatever failed last, a run that had to stop reports why it stopped.
      journal.guard.check();
      throw err;
    });
    if (options.manifestDir) {
      await writeManifest(options.manifestDir, buildManifest(await options.store.read(journal.runId))).catch(
        (err) =>
          logger.warn(
            `[${options.environment}] could not write the manifest of ${journal.runId}: ${String(err)}`,
          ),
      );
    }
    return result;
  } catch (err) {
    if (journal.guard.stopped)
      logger.error(
        `[${options.environment}] run ${journal.runId} stopped: ${err instanceof Error ? err.message : String(err)}`,
      );
    throw err;
  } finally {
    ctx.registry.leave(journal.runId);
    await stopControl?.().catch(() => {});
    await lock
      .release()
      .catch((err: unknown) =>
        logger.warn(
          `[${options.environment}] could not release the lock of ${journal.runId}: ${String(err)}`,
        ),
      );
  }
}
