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
  parseSha256Sums,
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
export { createReleaseEngine, knownGoodVersions, migrationsSince } from './engine/engine.js';
export type { EventListener, EventStreamOptions } from './engine/events.js';
export type { DeliveryOptions } from './engine/fanout.js';
export { buildManifest, type ReleaseManifest } from './engine/manifest.js';
export type { MetricsOptions, ReleaseMetrics } from './engine/metrics.js';
export {
  pickBackup,
  type RecoverOptions,
  type RecoveryContext,
  type RecoveryOptions,
  recoveryDefaults,
} from './engine/recovery.js';
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
export type { ConsoleLoggerOptions, LogFields, Logger } from './logger.js';
export { consoleLogger, silentLogger } from './logger.js';
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
export type { FileStoreOptions } from './store/file.js';
// Store
export { fileStore } from './store/file.js';
export type {
  HistoryEntry,
  JournalEntry,
  JournalEntryInput,
  Lock,
  LockOwner,
  RunHeader,
  RunSummary,
  Store,
} from './store/types.js';
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
// Built-in verifiers (HTTP validation suite, Prometheus and proxy analysis)
export * from './verifiers/index.js';
