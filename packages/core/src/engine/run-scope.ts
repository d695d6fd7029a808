import type { AnalysisResult } from '../analysis/types.js';
import type { BackupInfo } from '../backup/types.js';
import {
  AbortedError,
  AnalysisFailedError,
  BackupFailedError,
  JournalDivergedError,
  ReleaseError,
  type SerializedError,
  serializeError,
} from '../errors.js';
import type { IncidentReport, Phase, RunStatus } from '../events/types.js';
import type { Logger } from '../logger.js';
import { checkAction } from '../rules.js';
import type { HistoryEntry } from '../store/types.js';
import { servingPool } from '../strategies/restore.js';
import type { ActionOutcome, ActionPlan } from '../strategies/types.js';
import type { PoolState, TargetState } from '../target/types.js';
import type { Redactor } from '../util/redact.js';
import { type ActionEnv, analyze, describeAction, executeAction, targetCall } from './actions.js';
import type { ReleaseEngineOptions } from './config.js';
import type { EventInput } from './events.js';
import type { Journal } from './journal.js';
import type { ReleaseMetrics } from './metrics.js';
import type { RunResult } from './types.js';

/** What a run's flow needs from the engine. */
export interface FlowDeps {
  options: ReleaseEngineOptions;
  env: ActionEnv;
  journal: Journal;
  logger: Logger;
  redactor: Redactor;
  metrics: ReleaseMetrics | undefined;
  /** The run's signal: the caller's, plus `engine.abort()`. */
  signal: AbortSignal;
  emit(event: EventInput): void;
}

export interface Preflight {
  state: TargetState;
  stable: PoolState | null;
  replicas: number;
}

/** Tracks one run: phases with events and metrics, actions with journal replay, analyses and steps taken. */
export class RunScope {
  readonly analyses: AnalysisResult[] = [];
  readonly taken: string[] = [];
  readonly started: number;
  constructor(readonly d: FlowDeps) {
    this.started = Date.parse(d.journal.header.startedAt);
  }

  get label() {
    const h = this.d.journal.header;
    return `[${h.environment}] ${h.kind} ${h.version}`;
  }

  async phase<T>(phase: Phase, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    this.d.logger.info(`${this.label}: phase ${phase} started`);
    this.d.emit({ type: 'phase.started', phase });
    try {
      const out = await fn();
      this.#ended(phase, t0, true);
      return out;
    } catch (err) {
      this.#ended(phase, t0, false, err);
      throw err;
    }
  }

  #ended(phase: Phase, t0: number, ok: boolean, err?: unknown) {
    const durationMs = Math.round(performance.now() - t0);
    this.d.metrics?.phaseSeconds.observe(
      { environment: this.d.options.environment, phase },
      durationMs / 1000,
    );
    const error = err === undefined ? undefined : this.d.redactor.value(serializeError(err));
    const line = `${this.label}: phase ${phase} ${ok ? 'finished' : 'failed'} in ${durationMs} ms${error ? `: ${error.message}` : ''}`;
    if (ok) this.d.logger.info(line);
    else this.d.logger.error(line);
    this.d.emit({ type: 'phase.finished', phase, ok, durationMs, error });
  }

  /** Runs a strategy's plan, journaling each action; a failed analysis stops the plan. */
  async plan(phase: Phase, keyPrefix: string, gen: ActionPlan, signal: AbortSignal): Promise<void> {
    let index = 0;
    let next = gen.next();
    while (!next.done) {
      if (signal.aborted) {
        gen.return();
        throw signal.reason instanceof ReleaseError
          ? signal.reason
          : new AbortedError(`${phase} was cancelled: ${message(signal.reason)}`, { cause: signal.reason });
      }
      const action = checkAction(next.value, { plugin: this.d.options.strategy.name });
      const key = `${keyPrefix}/${index}`;
      const recorded = this.d.journal.startedWith(key);
      if (
        recorded !== undefined &&
        JSON.stringify(recorded) !== JSON.stringify(this.d.redactor.value(action))
      ) {
        throw new JournalDivergedError(
          `strategy ${this.d.options.strategy.name} asked for "${describeAction(action)}" at step ${key}, but the journal recorded ${JSON.stringify(recorded)}; strategies must be deterministic`,
        );
      }
      const replayed = this.d.journal.has(key);
      const t0 = performance.now();
      if (!replayed) {
        this.d.logger.info(`${this.label}: ${phase} action ${index + 1}: ${describeAction(action)}`);
        this.d.emit({ type: 'action.started', phase, index, action });
      }
      // The strategy sees what the journal keeps (redacted), so a replay feeds it exactly the same outcomes.
      const outcome = this.d.redactor.value(
        await this.d.journal.step<ActionOutcome>(
          key,
          () => executeAction(this.d.env, phase, action, signal),
          action,
        ),
      );
      if (!replayed) {
        this.d.emit({
          type: 'action.finished',
          phase,
          index,
          action,
          outcome,
          durationMs: Math.round(performance.now() - t0),
        });
      }
      this.taken.push(describeAction(action));
      if (action.type === 'analyze') {
        const result = outcome as AnalysisResult;
        this.analyses.push(result);
        if (result.verdict !== 'pass') {
          gen.return();
          throw new AnalysisFailedError(`analysis ${result.name} ended ${result.verdict}: ${result.reason}`, {
            phase,
            details: { analysis: result.name, verdict: result.verdict },
          });
        }
      }
      index++;
      next = gen.next(outcome);
    }
  }

  /** The verify phase: the engine's verifiers against what now serves `version`. */
  async verify(key: string, version: string, signal: AbortSignal): Promise<AnalysisResult> {
    const result = await this.d.journal.step(key, async () => {
      const state = await targetCall(
        this.d.env,
        'verify',
        'describe',
        (c) => this.d.options.target.describe({ signal: c.signal }),
        signal,
      );
      const pools = state.pools.filter((p) => p.version === version && p.weight > 0);
      const endpoint = state.endpoint ?? pools[0]?.endpoints[0];
      return analyze(this.d.env, key, version, pools, endpoint, this.d.options.verifyGate, undefined, signal);
    });
    const safe = this.d.redactor.value(result);
    this.analyses.push(safe);
    return safe;
  }

  async backup(
    reason: 'pre-release' | 'pre-rollback',
    version: string | undefined,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const provider = this.d.options.backup;
    if (!provider) return undefined;
    const env = this.d.options.environment;
    try {
      const info = await this.d.journal.step<BackupInfo>('backup', () =>
        this.d.env.calls.call(
          { kind: 'backup', plugin: provider.name, method: 'create', phase: 'backup', signal },
          (ctx) =>
            provider.create(
              {
                reason,
                environment: env,
                ...(version ? { version } : {}),
                labels: { runId: this.d.journal.runId },
              },
              ctx,
            ),
        ),
      );
      this.d.metrics?.backups.inc({ environment: env, outcome: 'created' });
      this.d.emit({ type: 'backup.created', backupId: info.id, provider: provider.name });
      this.taken.push(`backup ${info.id} (${reason})`);
      return info.id;
    } catch (err) {
      // A run that lost its lease or its store reports that, not a backup failure.
      this.d.journal.guard.check();
      this.d.metrics?.backups.inc({ environment: env, outcome: 'failed' });
      const error = new BackupFailedError(
        `backup ${provider.name} failed before the ${reason.slice(4)}; nothing was changed`,
        {
          cause: err,
          plugin: provider.name,
          phase: 'backup',
        },
      );
      this.d.emit({
        type: 'backup.failed',
        provider: provider.name,
        error: this.d.redactor.value(serializeError(err)),
      });
      throw error;
    }
  }

  async finish(
    status: RunStatus,
    fields: {
      from?: string | undefined;
      serving?: string | undefined;
      reason?: string;
      error?: unknown;
      backupId?: string | undefined;
      /** The migration record to keep in the history (a release's applied steps). @default the run's `migration` */
      migration?: unknown;
    },
    incident:
      | Omit<IncidentReport, 'startedAt' | 'finishedAt' | 'durationMs' | 'actions' | 'analyses' | 'status'>
      | undefined,
  ): Promise<RunResult> {
    const { journal, options, redactor } = this.d;
    const h = journal.header;
    const finishedAt = new Date().toISOString();
    const durationMs = Date.parse(finishedAt) - this.started;
    const reason = fields.reason === undefined ? undefined : redactor.string(fields.reason);
    const error: SerializedError | undefined =
      fields.error === undefined ? undefined : redactor.value(serializeError(fields.error));
    const report: IncidentReport | undefined = incident && {
      ...incident,
      reason: redactor.string(incident.reason),
      startedAt: h.startedAt,
      finishedAt,
      durationMs,
      actions: [...this.taken],
      analyses: this.analyses,
      status,
    };
    const verdicts: Record<string, string> = {};
    for (const a of this.analyses) verdicts[a.name] = a.verdict;
    const migration = fields.migration ?? h.data?.migration;
    await journal.step(
      'history',
      async () => {
        const entry: HistoryEntry = {
          runId: h.runId,
          kind: h.kind,
          version: h.version,
          from: fields.from,
          status,
          startedAt: h.startedAt,
          finishedAt,
          serving: fields.serving,
          backupId: fields.backupId,
          verdicts,
          reason,
          ...(migration !== undefined ? { migration } : {}),
        };
        await journal.recordHistory(entry);
        return null;
      },
      { finishedAt },
    );
    this.d.metrics?.runs.inc({ environment: options.environment, kind: h.kind, status });
    if (h.kind === 'rollback')
      this.d.metrics?.rollbacks.inc({ environment: options.environment, reason: 'emergency' });
    else if (status === 'rolled-back')
      this.d.metrics?.rollbacks.inc({ environment: options.environment, reason: 'automatic' });
    const result: RunResult = {
      runId: h.runId,
      kind: h.kind,
      environment: options.environment,
      status,
      version: h.version,
      from: fields.from,
      serving: fields.serving,
      reason,
      error,
      backupId: fields.backupId,
      analyses: this.analyses,
      startedAt: h.startedAt,
      finishedAt,
      durationMs,
      incident: report,
    };
    this.d.emit({
      type: 'run.finished',
      status,
      version: h.version,
      from: fields.from,
      serving: fields.serving,
      reason,
      durationMs,
      backupId: fields.backupId,
      error,
      incident: report,
    });
    const line = `${this.label}: ${status}${reason ? ` (${reason})` : ''}; serving ${fields.serving ?? 'nothing'}`;
    if (status === 'succeeded') this.d.logger.info(line);
    else this.d.logger.error(line);
    await journal.finish({
      status,
      ...(fields.serving ? { serving: fields.serving } : {}),
      ...(reason ? { reason } : {}),
    });
    return result;
  }

  async preflight(signal: AbortSignal): Promise<Preflight> {
    const { target } = this.d.options;
    return this.phase('preflight', () =>
      this.d.journal.step<Preflight>('preflight', async () => {
        const state = await targetCall(
          this.d.env,
          'preflight',
          'describe',
          (c) => target.describe({ signal: c.signal }),
          signal,
        );
        const stable = servingPool(state.pools) ?? null;
        return { state, stable, replicas: this.d.options.replicas ?? stable?.replicas ?? 2 };
      }),
    );
  }

  /** Retires the pools of `version` that take no traffic (after a failed first release). */
  async cleanUnrouted(version: string): Promise<void> {
    // Its own signal, so a cancelled run still cleans up; the run's guard still stops it.
    const signal = new AbortController().signal;
    const { target } = this.d.options;
    const state = await this.d.journal.step('cleanup/state', () =>
      targetCall(this.d.env, 'undo', 'describe', (c) => target.describe({ signal: c.signal }), signal),
    );
    const idle = state.pools.filter((p) => p.version === version && p.weight === 0);
    for (const [i, pool] of idle.entries()) {
      await this.d.journal.step(`cleanup/${i}`, () =>
        executeAction(this.d.env, 'undo', { type: 'retire', pool: pool.name }, signal),
      );
      this.taken.push(`retire ${pool.name}`);
    }
  }

  /** The strategy's undo back to `to`, then verification of `to`. Returns whether `to` verified. */
  async undo(
    to: string,
    replicas: number,
    reason: 'aborted' | 'failed' | 'emergency',
    signal: AbortSignal,
  ): Promise<boolean> {
    const { target, strategy } = this.d.options;
    await this.phase('undo', async () => {
      const state = await this.d.journal.step('undo/state', () =>
        targetCall(this.d.env, 'undo', 'describe', (c) => target.describe({ signal: c.signal }), signal),
      );
      await this.plan('undo', 'undo', strategy.undo({ to, state, replicas, reason }), signal);
    });
    const verdict = await this.phase('verify', () => this.verify('verify-restored', to, signal));
    return verdict.verdict === 'pass';
  }
}

/** The message of anything thrown. */
export const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
