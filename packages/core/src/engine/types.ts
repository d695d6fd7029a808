import type { Registry } from 'prom-client';
import type { JsonValue } from 'type-fest';
import type { AnalysisResult } from '../analysis/types.js';
import type { ArtifactSource } from '../artifacts/verify.js';
import type { SerializedError } from '../errors.js';
import type { IncidentReport, ReleaseEvent, ReleaseEventType, RunKind, RunStatus } from '../events/types.js';
import type { HistoryEntry, LockOwner, RunSummary } from '../store/types.js';
import type { Action } from '../strategies/types.js';
import type { PoolState } from '../target/types.js';
import type { EventListener, EventStreamOptions } from './events.js';
import type { ReleaseManifest } from './manifest.js';
import type { RecoverOptions } from './recovery-options.js';

/** Arguments of {@link ReleaseEngine.release}. */
export interface ReleaseOptions {
  /** The version to release, e.g. `v1.2.3`. */
  version: string;
  /** Cancels the release; the engine then undoes it (the undo itself is not cancelled). */
  signal?: AbortSignal;
  /** Why, for the journal and notifications. */
  reason?: string;
  /** Stored with the run. */
  labels?: Record<string, string>;
  /** A migration record the emergency rollback's database phase receives if this release is undone. */
  migration?: JsonValue;
  /**
   * A signed artifact to release (a hotfix): verified against `SHA256SUMS` and its ed25519 signature with
   * the engine's `artifacts.publicKey` before anything changes, then installed at
   * `artifactPath(artifacts, version)` for the target's command template. Needs the engine's `artifacts`.
   */
  artifact?: ArtifactSource;
  /**
   * Names of migration steps from the engine's `migrations` catalog, applied in this order after the
   * backup and before the deploy; on failure the applied ones are undone in reverse order.
   */
  migrations?: string[];
}

/** Arguments of {@link ReleaseEngine.rollback}. */
export interface RollbackOptions {
  /** A version the history knows as released and good (or one of `knownVersions`). */
  to: string;
  /** Why, for the incident report. */
  reason: string;
  /** Must be exactly `'CONFIRM'`, as the runbook's rollback workflow asks. */
  confirm: string;
  signal?: AbortSignal;
}

/** What a run did: status, versions, the analyses behind the decision, the backup taken. */
export interface RunResult {
  runId: string;
  kind: RunKind;
  environment: string;
  status: RunStatus;
  /** The version asked for. */
  version: string;
  /** The version serving when the run started. */
  from?: string | undefined;
  /** The version serving when the run ended. */
  serving?: string | undefined;
  /** Why the run ended as it did, in one line. */
  reason?: string | undefined;
  error?: SerializedError | undefined;
  backupId?: string | undefined;
  analyses: AnalysisResult[];
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  incident?: IncidentReport | undefined;
}

/** A dry run: the actions a release would take, computed with no side effect. */
export interface Plan {
  environment: string;
  version: string;
  from?: string | undefined;
  strategy: string;
  replicas: number;
  actions: Action[];
  /** One line per action. */
  steps: string[];
  /** The strategy's own figures for this plan (see `Strategy.summarize`), e.g. a canary's exposure. */
  summary?: Record<string, unknown>;
}

/** Where an environment stands. */
export interface EngineStatus {
  environment: string;
  /** The version taking the most traffic. */
  serving?: string | undefined;
  pools: PoolState[];
  /** Who holds the lock, if anyone alive does. */
  lock?: LockOwner | undefined;
  /** Runs that started and never finished (their process died): resume or roll back. */
  interrupted: RunSummary[];
  lastRun?: RunSummary | undefined;
  /** What the engine could not read (a damaged journal, say), in words; absent when everything read. */
  problems?: string[] | undefined;
}

/** The release engine: releases, plans, rollbacks, resumes, status, history and events. */
export interface ReleaseEngine {
  readonly environment: string;
  /**
   * The prom-client registry holding this engine's metrics (the `metrics.registry` it was given, else a
   * private one); `undefined` with `metrics: false`. Serve it with `metricsHandler(engine.registry)`.
   */
  readonly registry: Registry | undefined;
  /** preflight → backup → deploy → verify; on failure the strategy's undo and a verified rollback. */
  release(options: ReleaseOptions): Promise<RunResult>;
  /** The actions `release` would take, without any side effect. */
  plan(options: { version: string; signal?: AbortSignal }): Promise<Plan>;
  /** The runbook's emergency rollback: validation, backup, database rollback, application rollback, verification, notification. */
  rollback(options: RollbackOptions): Promise<RunResult>;
  /** Continues a run whose process died, from its journal. A finished run returns its result. */
  resume(runId: string, options?: { signal?: AbortSignal }): Promise<RunResult>;
  status(): Promise<EngineStatus>;
  /** Finished runs, oldest first. */
  history(): Promise<HistoryEntry[]>;
  /**
   * Approves a pause of a running run (every running run when no id is given). With `full: true` the
   * strategy is told to skip its remaining steps and promote fully. Returns whether a run was running.
   */
  promote(runId?: string, options?: { full?: boolean }): boolean;
  /** Aborts a running run: it is undone as if an analysis had failed. Returns whether one was running. */
  abort(runId?: string, reason?: string): boolean;
  /** Listens to one event type, or `'*'`. Returns the function that stops listening. */
  on<T extends ReleaseEventType | '*'>(type: T, listener: EventListener<T>): () => void;
  /** Every event from now on, as an async iterator. */
  events(options?: EventStreamOptions): AsyncIterable<ReleaseEvent>;
  /**
   * The runbook's full or point-in-time recovery: stop, move data aside, restore a backup (by id, or the
   * newest at or before a time), start, verify, integrity check, incident report. Needs `backup`.
   *
   * @example
   * ```ts
   * const r = await engine.recover({ backup: { at: '2026-11-25T14:00:00Z' }, reason: 'bad import', confirm: 'CONFIRM' })
   * if (r.status !== 'succeeded') page(r.incident)
   * ```
   */
  recover(options: RecoverOptions): Promise<RunResult>;
  /** A run's manifest (versions, artifact hash, backups, migrations, verdicts, durations) from its journal. */
  manifest(runId: string): Promise<ReleaseManifest>;
  /**
   * Waits for notifications still in flight, at most `deadlines.closeMs`, without closing anything: for
   * a CLI that prints delivery failures before its result. The run's lock is not held meanwhile.
   *
   * @example
   * ```ts
   * const result = await engine.release({ version: 'v1.2.3' })
   * await engine.drain()
   * print(result)
   * ```
   */
  drain(): Promise<void>;
  /**
   * Waits for notifications still in flight (a run releases its lock without waiting for them), then
   * closes the notifiers; each wait is bounded by `deadlines.closeMs`, whatever a notifier does.
   */
  close(): Promise<void>;
}
