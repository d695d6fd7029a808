import type { AnalysisResult, MeasuredCheck } from '../analysis/types.js';
import type { SerializedError } from '../errors.js';
import type { Action, ActionOutcome } from '../strategies/types.js';
import type { Weights } from '../target/types.js';

/** What a run does. */
export type RunKind = 'release' | 'rollback' | 'recovery' | 'pipeline';

/** The engine's phases, in the order a release runs them. */
export type Phase =
  | 'preflight'
  | 'backup'
  | 'deploy'
  | 'verify'
  | 'database-rollback'
  | 'undo'
  | 'notify'
  /** A hotfix's verified artifact is copied into place. */
  | 'install'
  /** A release's migration steps are applied (or, after a failure, undone). */
  | 'migrate'
  /** Recovery: the service is stopped so its data can be replaced. */
  | 'stop'
  /** Recovery: current data moved aside, the chosen backup restored. */
  | 'restore'
  /** Recovery: the service is started again. */
  | 'start'
  /** Recovery: the backup provider's verification of the restored backup. */
  | 'integrity';

/** How a run ended. */
export type RunStatus =
  /** The version was released and verified. */
  | 'succeeded'
  /** The release failed and traffic is back on the previous version, verified. */
  | 'rolled-back'
  /** The run failed and could not restore a verified state: a human must look. */
  | 'failed'
  /** Another run took the environment over after this one's process died. */
  | 'superseded';

/** Runbook severities: P0 service down ... P3 informational. */
export type Severity = 'P0' | 'P1' | 'P2' | 'P3';

/** Fields every event has. */
export interface EventBase {
  runId: string;
  environment: string;
  kind: RunKind;
  /** ISO time. */
  time: string;
}

export interface RunStartedEvent extends EventBase {
  type: 'run.started';
  version: string;
  /** The version serving when the run started, if any. */
  from?: string | undefined;
  reason?: string | undefined;
  /** Set when the run continues a journal after a crash. */
  resumed?: boolean;
}
export interface PhaseStartedEvent extends EventBase {
  type: 'phase.started';
  phase: Phase;
}
export interface PhaseFinishedEvent extends EventBase {
  type: 'phase.finished';
  phase: Phase;
  ok: boolean;
  durationMs: number;
  error?: SerializedError | undefined;
}
export interface ActionStartedEvent extends EventBase {
  type: 'action.started';
  phase: Phase;
  /** Position in the phase's action list, from 0. */
  index: number;
  action: Action;
}
export interface ActionFinishedEvent extends EventBase {
  type: 'action.finished';
  phase: Phase;
  index: number;
  action: Action;
  outcome: ActionOutcome;
  durationMs: number;
}
export interface TrafficShiftedEvent extends EventBase {
  type: 'traffic.shifted';
  weights: Weights;
}
export interface AnalysisFinishedEvent extends EventBase {
  type: 'analysis.finished';
  version: string;
  result: AnalysisResult;
}
/** One measured check of an analysis gate, as it is taken (also journaled as a note). */
export interface AnalysisMeasuredEvent extends EventBase, MeasuredCheck {
  type: 'analysis.measured';
  version: string;
}
export interface BackupCreatedEvent extends EventBase {
  type: 'backup.created';
  backupId: string;
  provider: string;
}
export interface BackupFailedEvent extends EventBase {
  type: 'backup.failed';
  provider: string;
  error: SerializedError;
}
export interface NotificationFailedEvent extends EventBase {
  type: 'notification.failed';
  notifier: string;
  /** The event that could not be delivered. */
  eventType: ReleaseEvent['type'];
  error: SerializedError;
}

/**
 * The engine stopped waiting for a plugin call: its deadline passed (or the run was aborted or lost
 * its lock) and the plugin had not returned, whatever it does with its `AbortSignal`.
 */
export interface PluginAbandonedEvent extends EventBase {
  type: 'plugin.abandoned';
  /** What kind of plugin: `target`, `verifier`, `backup`, `notifier`, `migration`, `databaseRollback`, `recovery`. */
  pluginKind: string;
  plugin: string;
  /** The plugin method, e.g. `notify`, `provision route`. */
  method: string;
  phase: string;
  reason: 'deadline' | 'aborted';
  /** How long the engine waited, in milliseconds. */
  afterMs: number;
}

/** What an emergency rollback or failed release reports: the runbook's incident fields. */
export interface IncidentReport {
  severity: Severity;
  /** One line: what happened. */
  summary: string;
  /** Why: the reason given, or the failing check. */
  reason: string;
  from?: string | undefined;
  to: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  backupId?: string | undefined;
  /** Steps taken, in order, in words. */
  actions: string[];
  /** The verdicts behind the decision and after it. */
  analyses: AnalysisResult[];
  status: RunStatus;
}

export interface RunFinishedEvent extends EventBase {
  type: 'run.finished';
  status: RunStatus;
  /** The version the run was asked for (the release's version or the rollback's target). */
  version: string;
  /** The version serving when the run started. */
  from?: string | undefined;
  /** The version serving when the run ended. */
  serving?: string | undefined;
  reason?: string | undefined;
  durationMs: number;
  backupId?: string | undefined;
  error?: SerializedError | undefined;
  /** Present for rollbacks and failed releases. */
  incident?: IncidentReport | undefined;
}

/** Every event the engine emits. Notifiers receive these; the CLI and reports render them. */
export type ReleaseEvent =
  | RunStartedEvent
  | PhaseStartedEvent
  | PhaseFinishedEvent
  | ActionStartedEvent
  | ActionFinishedEvent
  | TrafficShiftedEvent
  | AnalysisFinishedEvent
  | AnalysisMeasuredEvent
  | BackupCreatedEvent
  | BackupFailedEvent
  | NotificationFailedEvent
  | PluginAbandonedEvent
  | RunFinishedEvent;

/** The event type names. */
export type ReleaseEventType = ReleaseEvent['type'];

/** The event of a given type. */
export type ReleaseEventOf<T extends ReleaseEventType> = Extract<ReleaseEvent, { type: T }>;
