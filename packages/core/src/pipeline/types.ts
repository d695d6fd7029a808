import type { AnalysisResult, GateOptions, Verifier } from '../analysis/types.js';
import type { ReleaseEngineOptions } from '../engine/config.js';
import type { Plan, ReleaseEngine, RollbackOptions, RunResult } from '../engine/types.js';
import type { ReleaseEvent, RunStatus } from '../events/types.js';
import type { Logger } from '../logger.js';
import type { Notifier } from '../notify/types.js';
import type { LockOwner, Store } from '../store/types.js';
import type { Target } from '../target/types.js';
import type { WindowRule } from './windows.js';

/** N of M named approvers, before a stage may start. */
export interface ApprovalRule {
  /** How many different approvers are needed (N). */
  required: number;
  /** Who may approve (M identities, e.g. `alice`, `ops-bot`). */
  approvers: string[];
  /** An approval older than this no longer counts. @default 86_400_000 (24 h) */
  expiresAfterMs?: number;
}

/** Extra gates a stage's version must pass after its engine released it. */
export interface StageVerify {
  verifiers: Verifier[];
  /** Gate semantics (count, interval, limits), as for the engine's analyses. @default { count: 1 } */
  gate?: GateOptions;
}

/** One environment of a pipeline. */
export interface StageOptions {
  /** The stage's name, used in approvals' subjects (`production@v1.2.3`) and the status. */
  name: string;
  /**
   * The stage's engine, or the options to create it with. Each stage has its own target, strategy,
   * verifiers, backup, notifiers and store.
   */
  engine: ReleaseEngine | ReleaseEngineOptions;
  /** The engine's target; needed for `verify` when `engine` is an engine rather than its options. */
  target?: Target;
  /**
   * How long the version must have served the previous stage, measured from that stage's success as the
   * pipeline journaled it, before it may enter this one. Not allowed on the first stage. @default 0
   */
  soakMs?: number;
  /** Who must approve before this stage starts. @default none */
  approval?: ApprovalRule;
  /** When this stage's promotion may start (allow windows, deny rules/freezes). @default always */
  windows?: WindowRule[];
  /** Extra gates after the stage's release, e.g. a performance check against the previous version. */
  verify?: StageVerify;
  /** What `plan()` assumes a release of this stage takes, for the next stages' earliest start. @default 0 */
  expectedDurationMs?: number;
}

/** Options of {@link createPipeline}. */
export interface PipelineOptions {
  /** The pipeline's name: its journal lives under the environment `pipeline.<name>` of `store`. */
  name: string;
  /** The environments, in promotion order. */
  stages: StageOptions[];
  /** Where the pipeline's own journal, lease and approvals live (can be shared by several hosts). */
  store: Store;
  /** Notified when the pipeline starts and finishes (`run.started`/`run.finished` of kind `pipeline`). */
  notifiers?: Notifier[];
  /** @default consoleLogger() */
  logger?: Logger;
  /** The clock windows, soak and approval expiry are judged by. @default () => new Date() */
  clock?: () => Date;
  /** How often a waiting pipeline looks again at its clock (real time). @default 5_000 */
  checkEveryMs?: number;
  /**
   * The longest one call to `store` may take before the pipeline stops waiting for it and fails the step
   * with `CG_STORE_UNAVAILABLE` (the run can be resumed). @default 60_000 (`pluginDeadlineDefaults.storeMs`)
   */
  storeMs?: number;
}

/** One thing a stage's next promotion waits for. */
export interface WaitReason {
  gate: 'soak' | 'window' | 'approval' | 'previous-stage';
  /** In words: `soak: 2m left`, `freeze: year-end`, `approvals 1 of 2 (alice)`. */
  detail: string;
  /** When it will hold at the earliest, when known. */
  until?: string | undefined;
}

/** One approval as journaled. */
export interface ApprovalRecord {
  stage: string;
  version: string;
  by: string;
  /** ISO time it was given (the store's time, never later than its arrival). */
  at: string;
  requestId: string;
}

/** A stage in {@link PipelineStatus}. */
export interface StageStatus {
  stage: string;
  environment: string;
  /** The version serving this environment now. */
  serving?: string | undefined;
  /** This pipeline run's progress at this stage. */
  state: 'pending' | 'waiting' | 'running' | 'skipped' | RunStatus;
  /** The stage's engine run for this pipeline run. */
  runId?: string | undefined;
  /** What the next promotion into this stage waits for (empty when it may start). */
  waitingFor: WaitReason[];
  /** When all its gates are expected to hold (absent when unknown, e.g. awaiting approvals). */
  until?: string | undefined;
  /** Approvals counted now (unexpired) for this run's version. */
  approvals: ApprovalRecord[];
  /** When this run's version succeeded here. */
  succeededAt?: string | undefined;
}

/** Where a pipeline stands. */
export interface PipelineStatus {
  pipeline: string;
  /** The latest pipeline run, if any. */
  run?:
    | {
        runId: string;
        version: string;
        startedAt: string;
        /** `running` while a live process holds its lease; `interrupted` when none does. */
        state: 'running' | 'interrupted' | 'finished';
        status?: RunStatus | undefined;
        reason?: string | undefined;
        owner?: LockOwner | undefined;
      }
    | undefined;
  stages: StageStatus[];
  /** When this status was computed (the pipeline's clock). */
  at: string;
}

/** A stage in {@link PipelinePlan}. */
export interface StagePlan {
  stage: string;
  environment: string;
  /** The earliest start given soak, windows and the previous stages' expected durations. */
  earliestStart?: string | undefined;
  /** Why not earlier. */
  constraints: string[];
  /** Needs approvals: the start is no earlier than they arrive. */
  approval?: { required: number; approvers: string[] } | undefined;
  /** The stage engine's dry run (actions, steps, the strategy's exposure summary). */
  plan: Plan;
  /** The strategy's worst-case exposure, from the plan's summary when the strategy gives one. */
  exposure?: Record<string, unknown> | undefined;
}

/** What {@link Pipeline.plan} answers. */
export interface PipelinePlan {
  pipeline: string;
  version: string;
  stages: StagePlan[];
}

/** What {@link Pipeline.promote} returns. */
export interface PipelineResult {
  runId: string;
  pipeline: string;
  version: string;
  /** `succeeded` when every stage released the version; otherwise how the failing stage ended. */
  status: RunStatus;
  /** The last stage the version reached successfully. */
  reached?: string | undefined;
  /** The stage that stopped it. */
  stoppedAt?: string | undefined;
  reason?: string | undefined;
  stages: Array<{ stage: string; result?: RunResult | undefined; gate?: AnalysisResult | undefined }>;
  resumed: boolean;
}

/** Events of a pipeline run; stage engines' own events arrive wrapped in `pipeline.stage.event`. */
export type PipelineEvent = { pipeline: string; runId: string; time: string } & (
  | { type: 'pipeline.started'; version: string; stages: string[]; resumed: boolean }
  | { type: 'pipeline.waiting'; stage: string; waitingFor: WaitReason[] }
  | { type: 'pipeline.approval'; stage: string; by: string; applied: boolean; message: string }
  | { type: 'pipeline.stage.started'; stage: string; version: string; resumed: boolean }
  | { type: 'pipeline.stage.event'; stage: string; event: ReleaseEvent }
  | { type: 'pipeline.stage.gate'; stage: string; result: AnalysisResult }
  | {
      type: 'pipeline.stage.finished';
      stage: string;
      status: RunStatus;
      stageRunId?: string | undefined;
      serving?: string | undefined;
      reason?: string | undefined;
    }
  | {
      type: 'pipeline.finished';
      version: string;
      status: RunStatus;
      reached?: string | undefined;
      reason?: string | undefined;
    }
);

/** The event type names of a pipeline. */
export type PipelineEventType = PipelineEvent['type'];

/** The pipeline event of a given type (every event for `'*'`). */
export type PipelineEventOf<T extends PipelineEventType | '*'> = T extends '*'
  ? PipelineEvent
  : Extract<PipelineEvent, { type: T }>;

/** An ordered promotion of one version through environments. */
export interface Pipeline {
  readonly name: string;
  /** `pipeline.<name>`: the store environment holding the pipeline's runs, lease and approvals. */
  readonly environment: string;
  readonly stages: ReadonlyArray<{ name: string; engine: ReleaseEngine }>;
  /**
   * Promotes a version through every stage it may, waiting durably for soak, windows and approvals, and
   * stops at the first failed stage. An unfinished run of the same version is continued.
   */
  promote(version: string, options?: { signal?: AbortSignal; reason?: string }): Promise<PipelineResult>;
  /** Continues the unfinished pipeline run, whatever its version. */
  resume(options?: { signal?: AbortSignal }): Promise<PipelineResult>;
  /** Per stage: the version serving, what the next promotion waits for, and until when. */
  status(): Promise<PipelineStatus>;
  /** When each stage could start at the earliest, and each stage's exposure; no side effect. */
  plan(version: string, options?: { signal?: AbortSignal }): Promise<PipelinePlan>;
  /**
   * Sends an approval through the store (any process can: it is a control request) and waits for the
   * running pipeline's answer. Resolves `undefined` when no pipeline answered within `timeoutMs`.
   */
  approve(options: {
    stage: string;
    version: string;
    by: string;
    timeoutMs?: number;
  }): Promise<{ applied: boolean; message?: string | undefined } | undefined>;
  /** The emergency rollback of one stage: never blocked by a window, only by its confirmation. */
  rollback(stage: string, options: RollbackOptions): Promise<RunResult>;
  /** Listens to one event type, or `'*'`. Returns the function that stops listening. */
  on<T extends PipelineEventType | '*'>(type: T, listener: (event: PipelineEventOf<T>) => void): () => void;
  /** Closes the stage engines it created and the notifiers. */
  close(): Promise<void>;
}
