// Analysis
export { runGate } from './analysis/gate.js';
export {
  type Counts,
  type RateEvidence,
  rateAboveLimit,
  sequentialAlpha,
  spentAlpha,
  TwoSampleEventTest,
} from './analysis/sequential.js';
export type {
  AnalysisResult,
  Check,
  GateHooks,
  GateOptions,
  GateVerdict,
  MeasuredCheck,
  Measurement,
  Verdict,
  Verifier,
  VerifierResult,
  VerifyContext,
} from './analysis/types.js';
// Hotfix artifacts, migration steps, recovery and run manifests
export {
  type ArtifactOptions,
  artifactPath,
  defaultArtifactFileName,
} from './artifacts/install.js';
export {
  type ArtifactPublicKey,
  type ArtifactSource,
  sha256File,
  type VerifiedArtifact,
  type VerifyArtifactOptions,
  verifyArtifact,
} from './artifacts/verify.js';
export type {
  BackupInfo,
  BackupProvider,
  BackupReason,
  BackupRequest,
  BackupVerification,
  PruneResult,
  RestoreRequest,
  RestoreResult,
  RetentionPolicy,
  VerifyLevel,
} from './backup/types.js';
export type { OperationContext } from './context.js';
// Plugin helpers
export {
  defineBackupProvider,
  defineNotifier,
  defineStore,
  defineStrategy,
  defineTarget,
  defineVerifier,
} from './define.js';
// Engine
export { describeAction, formatWeights } from './engine/actions.js';
export type { DatabaseRollbackContext, ReleaseEngineOptions } from './engine/config.js';
export { createReleaseEngine } from './engine/engine.js';
export type { EventListener, EventStreamOptions } from './engine/events.js';
export { type DeliveryOptions, deliveryDefaults } from './engine/fanout.js';
export { buildManifest, type ReleaseManifest } from './engine/manifest.js';
export type { MetricsOptions, ReleaseMetrics } from './engine/metrics.js';
export {
  type AbandonedCall,
  type PluginDeadlines,
  type PluginKind,
  pluginDeadlineDefaults,
} from './engine/plugin-call.js';
export {
  type RecoverOptions,
  type RecoveryContext,
  type RecoveryOptions,
  recoveryDefaults,
} from './engine/recovery-options.js';
export type { RunData } from './engine/run-data.js';
export type {
  EngineStatus,
  Plan,
  ReleaseEngine,
  ReleaseOptions,
  RollbackOptions,
  RunResult,
} from './engine/types.js';
export * from './errors.js';
export type * from './events/types.js';
export type { ConsoleLoggerOptions, FieldsFirstLogger, LogFields, Logger, LoggerInput } from './logger.js';
export { childLogger, consoleLogger, fieldsFirst, silentLogger, toLogger } from './logger.js';
export {
  type BackfillOptions,
  backfill,
  backfillDefaults,
  type MigrationContext,
  type MigrationStep,
  type MigrationStepsRecord,
  type MigrationUndoContext,
  validateCounts,
} from './migrations/steps.js';
export type { Notifier } from './notify/types.js';
// Observability: the engine's prom-client metrics over HTTP (`engine.registry`)
export { metricsHandler, metricsText } from './observability/metrics-http.js';
// Observability: OpenTelemetry spans from the engine's events
export {
  type EventSource,
  type SpanAttributeValue,
  type SpanLike,
  type TracerLike,
  type TracingOptions,
  traceEvents,
} from './observability/tracing.js';
// Pipelines: ordered promotion across environments (soak, windows, approvals, extra gates)
export { type ApproveOptions, approvePipeline } from './pipeline/approve.js';
export { createPipeline } from './pipeline/pipeline.js';
export type {
  ApprovalRecord,
  ApprovalRule,
  Pipeline,
  PipelineEvent,
  PipelineEventOf,
  PipelineEventType,
  PipelineOptions,
  PipelinePlan,
  PipelineResult,
  PipelineStatus,
  StageOptions,
  StagePlan,
  StageStatus,
  StageVerify,
  WaitReason,
} from './pipeline/types.js';
export { type WindowRule, type WindowState, windowsAt } from './pipeline/windows.js';
// One set of rules for names, versions, weights and replicas (also in `/kit` for plugin authors)
export {
  checkIdentifier,
  checkPoolName,
  checkReplicas,
  checkVersion,
  checkWeights,
  type RuleContext,
  rules,
} from './rules.js';
// Store
// The control-request rules every store applies (sent and read back), for stores outside core
export {
  checkControlId,
  checkControlInput,
  checkControlReply,
  checkControlRequest,
  controlActions,
  controlLimits,
  isControlId,
  newControlId,
} from './store/control.js';
export type { FileStoreOptions } from './store/file.js';
export { fileStore } from './store/file.js';
export type {
  ControlAction,
  ControlOutcome,
  ControlReply,
  ControlRequest,
  ControlRequestInput,
  ControlSubscription,
  Fence,
  HistoryEntry,
  JournalEntry,
  JournalEntryInput,
  Lock,
  LockOwner,
  RunHeader,
  RunSummary,
  Store,
} from './store/types.js';
// Typed strategy authoring: `const pool = yield* provision({...})`
export {
  act,
  analyze,
  type Effect,
  pause,
  promote,
  provision,
  retire,
  route,
} from './strategies/effects.js';
export { restoreVersion, servingPool } from './strategies/restore.js';
export type { RollingOptions } from './strategies/rolling.js';
// Strategies
export { rolling } from './strategies/rolling.js';
export type {
  Action,
  ActionOutcome,
  ActionOutcomes,
  ActionPlan,
  AnalyzeAction,
  PauseAction,
  PauseOutcome,
  PromoteAction,
  ProvisionAction,
  RetireAction,
  RouteAction,
  Strategy,
  StrategyInput,
  UndoInput,
} from './strategies/types.js';
// The embedded default target
export * from './target/local/index.js';
// Plugin interfaces
export type {
  PoolState,
  PoolTraffic,
  ProvisionRequest,
  Target,
  TargetState,
  Weights,
} from './target/types.js';
export { poolName } from './target/types.js';
export type { Redactor } from './util/redact.js';
export { createRedactor, REDACTED } from './util/redact.js';
export type { RetryOptions } from './util/retry.js';
export { sanitizeForTerminal } from './util/terminal.js';
// Built-in verifiers (HTTP validation suite, Prometheus and proxy analysis)
export * from './verifiers/index.js';
