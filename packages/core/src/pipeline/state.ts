import type { ReleaseEngine } from '../engine/types.js';
import { ConfigInvalidError, StoreError } from '../errors.js';
import type { RunStatus } from '../events/types.js';
import { checkIdentifier, checkVersion } from '../rules.js';
import type { ControlRequest, JournalEntry, RunHeader } from '../store/types.js';
import type { Target } from '../target/types.js';
import type { ApprovalRecord, StageVerify, WaitReason } from './types.js';
import { type CompiledWindows, windowState } from './windows.js';

/** A stage after validation. */
export interface Stage {
  name: string;
  engine: ReleaseEngine;
  target?: Target | undefined;
  soakMs: number;
  approval?: { required: number; approvers: string[]; expiresAfterMs: number } | undefined;
  windows: CompiledWindows[];
  verify?: StageVerify | undefined;
  expectedDurationMs: number;
}

/** This pipeline run at one stage, as the journal tells it. */
export interface StageProgress {
  startedAt?: string;
  /** Real time the stage started (the engine's times are real time; the pipeline's clock may be another). */
  startedReal?: string;
  stageRunId?: string;
  finished?: { status: RunStatus; at: string; serving?: string | undefined; reason?: string | undefined };
}

/** A pipeline run rebuilt from its journal. */
export interface RunState {
  header: RunHeader;
  stages: Map<string, StageProgress>;
  approvals: ApprovalRecord[];
  finished?: { status: RunStatus; reason?: string | undefined } | undefined;
}

const statuses: ReadonlySet<string> = new Set(['succeeded', 'rolled-back', 'failed', 'superseded']);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isTime = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v));
const optStr = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function corrupt(runId: string, what: string): StoreError {
  return new StoreError(
    `pipeline run ${runId}: journal entry ${what} is malformed; nothing was done with it`,
  );
}

/** Rebuilds a pipeline run from its journal, checking every entry it relies on. */
export function replay(entries: readonly JournalEntry[]): RunState {
  const first = entries[0];
  if (first?.type !== 'run' || first.header.kind !== 'pipeline') {
    throw new StoreError(
      'journal is not a pipeline run (its first entry must be a run header of kind "pipeline")',
    );
  }
  const header = first.header;
  checkVersion(header.version, 'pipeline run version');
  const state: RunState = { header, stages: new Map(), approvals: [] };
  const at = (stage: string) => {
    const p = state.stages.get(stage) ?? {};
    state.stages.set(stage, p);
    return p;
  };
  for (const e of entries.slice(1)) {
    if (e.type === 'step-started' && e.key.startsWith('stage/')) {
      const input = e.input;
      if (!isObj(input) || !isTime(input.at)) throw corrupt(header.runId, `step ${e.key}`);
      const p = at(e.key.slice(6));
      p.startedAt = input.at;
      p.startedReal = isTime(input.real) ? input.real : input.at;
    } else if (e.type === 'step-finished' && e.key.startsWith('stage/')) {
      const r = e.result;
      if (!isObj(r) || typeof r.status !== 'string' || !statuses.has(r.status) || !isTime(r.at)) {
        throw corrupt(header.runId, `step ${e.key}`);
      }
      at(e.key.slice(6)).finished = {
        status: r.status as RunStatus,
        at: r.at,
        serving: optStr(r.serving),
        reason: optStr(r.reason),
      };
    } else if (e.type === 'note' && e.message === 'stage-run') {
      const d = e.data;
      if (!isObj(d) || typeof d.stage !== 'string' || typeof d.runId !== 'string')
        throw corrupt(header.runId, 'stage-run');
      at(d.stage).stageRunId = d.runId;
    } else if (e.type === 'note' && e.message === 'approval') {
      const d = e.data;
      if (
        !isObj(d) ||
        typeof d.stage !== 'string' ||
        typeof d.by !== 'string' ||
        typeof d.requestId !== 'string' ||
        d.version !== header.version ||
        !isTime(d.at)
      ) {
        throw corrupt(header.runId, 'approval');
      }
      state.approvals.push({
        stage: d.stage,
        version: header.version,
        by: d.by,
        at: d.at,
        requestId: d.requestId,
      });
    } else if (e.type === 'finished') {
      state.finished = { status: e.status, reason: e.reason };
    }
  }
  return state;
}

/** The approvals that count now for a stage: unexpired, by a listed approver, the latest per person. */
export function countedApprovals(stage: Stage, state: RunState, now: Date): ApprovalRecord[] {
  const rule = stage.approval;
  if (!rule) return [];
  const byPerson = new Map<string, ApprovalRecord>();
  for (const a of state.approvals) {
    if (a.stage !== stage.name || !rule.approvers.includes(a.by)) continue;
    if (Date.parse(a.at) + rule.expiresAfterMs <= now.getTime()) continue;
    byPerson.set(a.by, a);
  }
  return [...byPerson.values()];
}

const fmt = (ms: number) =>
  ms >= 3_600_000
    ? `${(ms / 3_600_000).toFixed(1)}h`
    : ms >= 60_000
      ? `${Math.ceil(ms / 60_000)}m`
      : `${Math.ceil(ms / 1000)}s`;

/**
 * What stage `index` still waits for at `now` (empty: it may start). Soak counts from the previous
 * stage's success as journaled; windows are judged at `now`; approvals must be unexpired now.
 */
export function waitingFor(
  stages: readonly Stage[],
  index: number,
  state: RunState,
  now: Date,
): WaitReason[] {
  const stage = stages[index]!;
  const out: WaitReason[] = [];
  const prev = index > 0 ? stages[index - 1] : undefined;
  if (prev) {
    const done = state.stages.get(prev.name)?.finished;
    if (done?.status !== 'succeeded') {
      out.push({
        gate: 'previous-stage',
        detail: `${prev.name} has not released ${state.header.version} yet`,
      });
    } else if (stage.soakMs > 0) {
      const end = Date.parse(done.at) + stage.soakMs;
      if (end > now.getTime()) {
        out.push({
          gate: 'soak',
          detail: `soak in ${prev.name}: ${fmt(end - now.getTime())} left of ${fmt(stage.soakMs)}`,
          until: new Date(end).toISOString(),
        });
      }
    }
  }
  const w = windowState(stage.windows, now);
  if (!w.open) {
    out.push({ gate: 'window', detail: w.reason ?? 'closed', until: w.opensAt?.toISOString() });
  }
  if (stage.approval) {
    const counted = countedApprovals(stage, state, now);
    if (counted.length < stage.approval.required) {
      const names = counted.map((a) => a.by).join(', ');
      out.push({
        gate: 'approval',
        detail: `approvals ${counted.length} of ${stage.approval.required} needed${names ? ` (${names})` : ''}; approvers: ${stage.approval.approvers.join(', ')}`,
      });
    }
  }
  return out;
}

/** The latest `until` among reasons that all have one; undefined when any has none. */
export function allHoldBy(reasons: readonly WaitReason[]): string | undefined {
  if (reasons.length === 0) return undefined;
  if (reasons.some((r) => r.until === undefined)) return undefined;
  return reasons
    .map((r) => r.until!)
    .sort()
    .at(-1);
}

/** The subject an approval of `stage` for `version` carries. */
export const approvalSubject = (stage: string, version: string) => `${stage}@${version}`;

/**
 * Judges an `approve` control request against the run: a listed approver, for a stage of this run's
 * version that needs approval and has not started, not already approved by the same person (unexpired),
 * not expired on arrival. Returns the record to journal, or why it is refused.
 */
export function judgeApproval(
  request: ControlRequest,
  stages: readonly Stage[],
  state: RunState,
  now: Date,
): { record: ApprovalRecord } | { refused: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,127})@([A-Za-z0-9][A-Za-z0-9._+-]{0,127})$/.exec(
    request.subject ?? '',
  );
  if (!m) return { refused: 'subject must be <stage>@<version>' };
  const [, stageName, version] = m;
  const stage = stages.find((s) => s.name === stageName);
  if (!stage) return { refused: `no stage "${stageName}" in this pipeline` };
  if (version !== state.header.version) {
    return { refused: `this pipeline run promotes ${state.header.version}, not ${version}` };
  }
  if (!stage.approval) return { refused: `stage ${stage.name} needs no approval` };
  const by = request.by;
  if (typeof by !== 'string' || !stage.approval.approvers.includes(by)) {
    return { refused: `${String(by)} is not an approver of ${stage.name}` };
  }
  if (state.stages.get(stage.name)?.startedAt) return { refused: `${stage.name} has already started` };
  const created = Date.parse(request.createdAt);
  if (Number.isNaN(created)) return { refused: 'the request has no valid time' };
  const given = Math.min(created, now.getTime());
  if (given + stage.approval.expiresAfterMs <= now.getTime())
    return { refused: 'the approval expired before it arrived' };
  const earlier = countedApprovals(stage, state, now).find((a) => a.by === by);
  if (earlier) return { refused: `${by} already approved ${stage.name}@${version} at ${earlier.at}` };
  return {
    record: { stage: stage.name, version, by, at: new Date(given).toISOString(), requestId: request.id },
  };
}

/** Validates an approval rule. */
export function checkApproval(
  rule: unknown,
  where: string,
): { required: number; approvers: string[]; expiresAfterMs: number } | undefined {
  if (rule === undefined) return undefined;
  if (!isObj(rule)) throw new ConfigInvalidError(`${where}: approval must be { required, approvers }`);
  const approvers = rule.approvers;
  if (!Array.isArray(approvers) || approvers.length === 0) {
    throw new ConfigInvalidError(`${where}: approval.approvers must list at least one identity`);
  }
  for (const a of approvers) checkIdentifier(a, `${where}: approver`);
  if (new Set(approvers).size !== approvers.length)
    throw new ConfigInvalidError(`${where}: approvers must be distinct`);
  const required = rule.required;
  if (!Number.isInteger(required) || (required as number) < 1 || (required as number) > approvers.length) {
    throw new ConfigInvalidError(
      `${where}: approval.required must be an integer from 1 to ${approvers.length}`,
    );
  }
  const expires = rule.expiresAfterMs ?? 86_400_000;
  if (!Number.isInteger(expires) || (expires as number) < 1_000) {
    throw new ConfigInvalidError(`${where}: approval.expiresAfterMs must be an integer of at least 1000`);
  }
  return {
    required: required as number,
    approvers: approvers as string[],
    expiresAfterMs: expires as number,
  };
}
