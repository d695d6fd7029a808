import type { Plan } from '../engine/types.js';
import type { RunHeader, Store } from '../store/types.js';
import { allHoldBy, countedApprovals, type RunState, replay, type Stage, waitingFor } from './state.js';
import type { PipelinePlan, PipelineStatus, StagePlan, StageStatus } from './types.js';
import { nextOpen, windowState } from './windows.js';

/**
 * The pipeline run to show or continue: the unfinished one if any (there is at most one, since each is
 * driven under the pipeline's lease), else the newest.
 */
export async function latestRun(store: Store, environment: string): Promise<RunState | undefined> {
  const runs = (await store.runs(environment)).filter((r) => r.kind === 'pipeline');
  const pick = runs.find((r) => r.status === undefined) ?? runs[0];
  if (!pick) return undefined;
  return replay(await store.read(pick.runId));
}

/** Where a pipeline stands: per stage, the version serving, what the next promotion waits for, until when. */
export async function pipelineStatus(
  name: string,
  environment: string,
  stages: readonly Stage[],
  store: Store,
  now: Date,
): Promise<PipelineStatus> {
  const state = await latestRun(store, environment);
  const owner = await store.lockOwner(environment);
  let run: PipelineStatus['run'];
  if (state) {
    const h = state.header;
    run = {
      runId: h.runId,
      version: h.version,
      startedAt: h.startedAt,
      state: state.finished ? 'finished' : owner?.runId === h.runId ? 'running' : 'interrupted',
      status: state.finished?.status,
      reason: state.finished?.reason,
      owner: owner?.runId === h.runId ? owner : undefined,
    };
  }
  const active = state && !state.finished ? state : undefined;
  const out: StageStatus[] = [];
  let nextFound = false;
  for (let i = 0; i < stages.length; i++) {
    const stage = stages[i]!;
    const serving = await stage.engine
      .status()
      .then((s) => s.serving)
      .catch(() => undefined);
    const progress = state?.stages.get(stage.name);
    const base = {
      stage: stage.name,
      environment: stage.engine.environment,
      serving,
      runId: progress?.stageRunId,
      succeededAt: progress?.finished?.status === 'succeeded' ? progress.finished.at : undefined,
      approvals: state ? countedApprovals(stage, state, now) : [],
    };
    if (progress?.finished) {
      out.push({ ...base, state: progress.finished.status, waitingFor: [] });
    } else if (progress?.startedAt) {
      out.push({ ...base, state: active ? 'running' : 'failed', waitingFor: [] });
      nextFound = true;
    } else if (active && !nextFound) {
      nextFound = true;
      const reasons = waitingFor(stages, i, active, now);
      out.push({
        ...base,
        state: reasons.length ? 'waiting' : 'running',
        waitingFor: reasons,
        until: allHoldBy(reasons),
      });
    } else if (active) {
      out.push({
        ...base,
        state: 'pending',
        waitingFor: [
          {
            gate: 'previous-stage',
            detail: `${stages[i - 1]!.name} has not released ${active.header.version} yet`,
          },
        ],
      });
    } else {
      // No promotion in progress: what one would wait for now is this stage's window.
      const w = windowState(stage.windows, now);
      const waiting = w.open
        ? []
        : [{ gate: 'window' as const, detail: w.reason ?? 'closed', until: w.opensAt?.toISOString() }];
      out.push({
        ...base,
        state: state?.finished && progress === undefined ? 'skipped' : 'pending',
        waitingFor: waiting,
        until: allHoldBy(waiting),
      });
    }
  }
  return { pipeline: name, run, stages: out, at: now.toISOString() };
}

const minutes = (ms: number) => `${Math.round(ms / 60_000)} min`;

/** When each stage could start at the earliest given soak, windows and expected durations; no side effect. */
export async function pipelinePlan(
  name: string,
  stages: readonly Stage[],
  version: string,
  now: Date,
  signal: AbortSignal | undefined,
): Promise<PipelinePlan> {
  const out: StagePlan[] = [];
  let previousStart: number | undefined = now.getTime();
  for (let i = 0; i < stages.length; i++) {
    const stage = stages[i]!;
    const constraints: string[] = [];
    let earliest: number | undefined;
    if (previousStart !== undefined) {
      earliest = previousStart;
      if (i > 0) {
        const prev = stages[i - 1]!;
        earliest += prev.expectedDurationMs + stage.soakMs;
        if (prev.expectedDurationMs > 0)
          constraints.push(`${prev.name} takes about ${minutes(prev.expectedDurationMs)}`);
        if (stage.soakMs > 0) constraints.push(`soak ${minutes(stage.soakMs)} in ${prev.name}`);
      }
      const open = nextOpen(stage.windows, new Date(earliest));
      if (!open) {
        constraints.push('no promotion window opens within a year');
        earliest = undefined;
      } else if (open.getTime() > earliest) {
        const w = windowState(stage.windows, new Date(earliest));
        constraints.push(`${w.reason ?? 'window closed'} until ${open.toISOString()}`);
        earliest = open.getTime();
      }
    }
    if (stage.approval) {
      constraints.push(
        `${stage.approval.required} of ${stage.approval.approvers.length} approvals (${stage.approval.approvers.join(', ')})`,
      );
    }
    const plan = await stage.engine.plan({ version, ...(signal ? { signal } : {}) });
    out.push({
      stage: stage.name,
      environment: stage.engine.environment,
      earliestStart: earliest === undefined ? undefined : new Date(earliest).toISOString(),
      constraints,
      approval: stage.approval
        ? { required: stage.approval.required, approvers: [...stage.approval.approvers] }
        : undefined,
      plan,
      exposure: plan.summary ?? exposureOf(plan, version),
    });
    previousStart = earliest;
  }
  return { pipeline: name, version, stages: out };
}

/**
 * A strategy-independent worst case from a dry run, for strategies without their own summary: the share
 * of traffic the new version takes before its first analysis, and the analyses before it takes all.
 */
export function exposureOf(plan: Plan, version: string): Record<string, unknown> {
  const pools = new Set(
    plan.actions.flatMap((a) => (a.type === 'provision' && a.version === version ? [a.pool] : [])),
  );
  let before = 0;
  let analysed = false;
  let analysesBeforeFull = 0;
  let full = false;
  for (const a of plan.actions) {
    if (a.type === 'analyze') {
      if (!full) analysesBeforeFull++;
      analysed = true;
    } else if (a.type === 'route') {
      const share = Object.entries(a.weights).reduce((n, [pool, w]) => n + (pools.has(pool) ? w : 0), 0);
      if (!analysed) before = Math.max(before, share);
      if (share >= 100) full = true;
    }
  }
  return { trafficBeforeFirstAnalysisPercent: before, analysesBeforeFullTraffic: analysesBeforeFull };
}

/** The header of a new pipeline run. */
export function pipelineHeader(
  runId: string,
  environment: string,
  version: string,
  stages: readonly Stage[],
  startedAt: string,
  reason?: string,
): RunHeader {
  return {
    runId,
    kind: 'pipeline',
    environment,
    version,
    startedAt,
    strategy: 'pipeline',
    target: stages.map((s) => s.engine.environment).join(' > '),
    ...(reason ? { reason } : {}),
    data: { stages: stages.map((s) => ({ name: s.name, environment: s.engine.environment })) },
  };
}
