// Analysis
export { runGate } from './analysis/gate.js';
export type {
  AnalysisResult,
  Check,
  GateOptions,
  GateVerdict,
  Measurement,
  Verdict,
  Verifier,
  VerifierResult,
  VerifyContext,
} from './analysis/types.js';
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
export * from './errors.js';
export type * from './events/types.js';
export type { ConsoleLoggerOptions, LogFields, Logger } from './logger.js';
export { consoleLogger, silentLogger } from './logger.js';
export type { Notifier } from './notify/types.js';
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

// Built-in verifiers (HTTP validation suite, Prometheus and proxy analysis)
export * from './verifiers/index.js';

// The embedded default target
export * from './target/local/index.js';
