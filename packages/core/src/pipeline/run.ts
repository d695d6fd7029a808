import { hostname } from 'node:os';
import { runGate } from '../analysis/gate.js';
import type { AnalysisResult } from '../analysis/types.js';
import type { RunResult } from '../engine/types.js';
import { AbortedError, serializeError } from '../errors.js';
import type { RunStatus } from '../events/types.js';
import type { Logger } from '../logger.js';
import type { ControlOutcome, ControlRequest, JournalEntryInput, Lock, Store } from '../store/types.js';
import { sleep } from '../util/time.js';
import { judgeApproval, type RunState, type Stage, waitingFor } from './state.js';
import type { PipelineEvent, PipelineResult } from './types.js';

/** What a pipeline run needs from its pipeline. */
export interface RunContext {
  name: string;
  environment: string;
  stages: readonly Stage[];
  store: Store;
  logger: Logger;
  clock: () => Date;
  checkEveryMs: number;
  emit(event: PipelineEvent): void;
  /** Sets the run id that stage engine events are forwarded under. */
  setActiveRun(runId: string | undefined): void;
}

type Emit = PipelineEvent extends infer E
  ? E extends { type: string }
    ? Omit<E, 'pipeline' | 'runId' | 'time'>
    : never
  : never;

/**
 * Drives one pipeline run from its journal under the pipeline's lease: journals every decision with the
 * lease's fencing token, takes approvals from the store's control requests, waits for soak, windows and
 * approvals, runs each stage's engine (resuming a stage run a dead process left behind), and stops at
 * the first stage that does not succeed.
 */
export async function drive(
  ctx: RunContext,
  lock: Lock,
  state: RunState,
  resumed: boolean,
  signal: AbortSignal | undefined,
): Promise<PipelineResult> {
  const { store, stages, logger, clock } = ctx;
  const runId = state.header.runId;
  const version = state.header.version;
  const fence = { environment: ctx.environment, token: lock.token };
  const ac = new AbortController();
  const stop = (reason: unknown) => {
    if (!ac.signal.aborted) ac.abort(reason);
  };
  signal?.addEventListener('abort', () => stop(signal.reason), { once: true });
  lock.lost.addEventListener('abort', () => stop(lock.lost.reason), { once: true });
  if (signal?.aborted) stop(signal.reason);
  if (lock.lost.aborted) stop(lock.lost.reason);

  const append = (entry: JournalEntryInput) => store.append(runId, entry, fence);
  const emit = (e: Emit) =>
    ctx.emit({ ...e, pipeline: ctx.name, runId, time: clock().toISOString() } as PipelineEvent);
  let wake: (() => void) | undefined;
  let running: Stage | undefined;
  let abortedByRequest = false;

  // Control is serialised: one request is judged and journaled before the next is looked at.
  let queue = Promise.resolve();
  const handle = (request: ControlRequest): Promise<ControlOutcome> => {
    const next = queue.then(async (): Promise<ControlOutcome> => {
      if (request.action === 'abort') {
        const reason = `aborted by ${request.by ?? 'a control request'}${request.reason ? `: ${request.reason}` : ''}`;
        await append({ type: 'note', message: 'abort', data: { by: request.by, reason: request.reason } });
        abortedByRequest = true;
        stop(new AbortedError(reason));
        if (running) running.engine.abort(undefined, reason);
        return { applied: true, message: reason };
      }
      if (request.action !== 'approve') {
        return {
          applied: false,
          message: `${request.action} does not apply to a pipeline; send approve or abort`,
        };
      }
      const judged = judgeApproval(request, stages, state, clock());
      const stage = request.subject?.split('@')[0] ?? '';
      if ('refused' in judged) {
        await append({
          type: 'note',
          message: 'approval-refused',
          data: { subject: request.subject, by: request.by, requestId: request.id, reason: judged.refused },
        });
        emit({
          type: 'pipeline.approval',
          stage,
          by: request.by ?? '',
          applied: false,
          message: judged.refused,
        });
        logger.warn(`[${ctx.environment}] approval refused: ${judged.refused}`);
        return { applied: false, message: judged.refused };
      }
      await append({ type: 'note', message: 'approval', data: { ...judged.record } });
      state.approvals.push(judged.record);
      const message = `${judged.record.by} approved ${request.subject}`;
      emit({ type: 'pipeline.approval', stage, by: judged.record.by, applied: true, message });
      logger.info(`[${ctx.environment}] ${message}`);
      wake?.();
      return { applied: true, message };
    });
    queue = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  };

  const results: PipelineResult['stages'] = [];
  let reached: string | undefined;
  const finish = async (status: RunStatus, stoppedAt?: string, reason?: string): Promise<PipelineResult> => {
    await append({
      type: 'finished',
      status,
      // `serving` is a version: the one every stage now serves, when the pipeline got through.
      ...(status === 'succeeded' ? { serving: version } : {}),
      ...(reason ? { reason } : {}),
    });
    state.finished = { status, reason };
    logger.info(`[${ctx.environment}] ${version}: ${status}${reason ? ` (${reason})` : ''}`);
    return {
      runId,
      pipeline: ctx.name,
      version,
      status,
      reached,
      stoppedAt,
      reason,
      stages: results,
      resumed,
    };
  };

  const subscription = await store.watchControl(ctx.environment, runId, handle, {
    signal: ac.signal,
    logger,
  });
  ctx.setActiveRun(runId);
  try {
    emit({ type: 'pipeline.started', version, stages: stages.map((s) => s.name), resumed });
    for (let i = 0; i < stages.length; i++) {
      const stage = stages[i]!;
      const progress = state.stages.get(stage.name) ?? {};
      state.stages.set(stage.name, progress);
      if (progress.finished) {
        results.push({ stage: stage.name });
        if (progress.finished.status !== 'succeeded') {
          return await finish(progress.finished.status, stage.name, progress.finished.reason);
        }
        reached = stage.name;
        continue;
      }
      if (!progress.startedAt) {
        await waitGates(i);
        const prev = stages[i - 1];
        if (prev) {
          const trouble = await stillGood(prev);
          if (trouble) return await finish('failed', stage.name, trouble);
        }
        progress.startedAt = clock().toISOString();
        progress.startedReal = new Date().toISOString();
        await append({
          type: 'step-started',
          key: `stage/${stage.name}`,
          input: { version, at: progress.startedAt, real: progress.startedReal },
        });
      }
      running = stage;
      const outcome = await runStage(stage, progress.stageRunId, progress.startedReal);
      running = undefined;
      results.push({ stage: stage.name, result: outcome.result, gate: outcome.gate });
      const at = clock().toISOString();
      const { status, reason } = outcome;
      progress.finished = { status, at, serving: outcome.result.serving, reason };
      await append({
        type: 'step-finished',
        key: `stage/${stage.name}`,
        result: {
          status,
          at,
          serving: outcome.result.serving,
          from: outcome.result.from,
          runId: outcome.result.runId,
          reason,
        },
      });
      emit({
        type: 'pipeline.stage.finished',
        stage: stage.name,
        status,
        stageRunId: outcome.result.runId,
        serving: outcome.result.serving,
        reason,
      });
      if (status !== 'succeeded') return await finish(status, stage.name, reason);
      reached = stage.name;
    }
    return await finish('succeeded');
  } catch (err) {
    // An abort request ends the run; a caller's signal (Ctrl-C) or a lost lease leaves it to be resumed.
    if (abortedByRequest && !lock.lost.aborted) {
      const why = ac.signal.reason instanceof Error ? ac.signal.reason.message : String(ac.signal.reason);
      return await finish('failed', running?.name, why);
    }
    throw err;
  } finally {
    ctx.setActiveRun(undefined);
    await subscription.stop().catch(() => undefined);
    await queue;
  }

  async function waitGates(index: number): Promise<void> {
    let shown = '';
    for (;;) {
      if (ac.signal.aborted)
        throw new AbortedError('the pipeline was stopped while waiting', { cause: ac.signal.reason });
      const reasons = waitingFor(stages, index, state, clock());
      if (reasons.length === 0) return;
      const key = reasons
        .map((r) => `${r.gate}|${r.until ?? ''}|${r.gate === 'approval' ? r.detail : ''}`)
        .join(';');
      if (key !== shown) {
        shown = key;
        const stage = stages[index]!.name;
        await append({ type: 'note', message: 'waiting', data: { stage, waitingFor: reasons } });
        emit({ type: 'pipeline.waiting', stage, waitingFor: reasons });
        logger.info(`[${ctx.environment}] ${stage} waits for ${reasons.map((r) => r.detail).join('; ')}`);
      }
      // Wake at the next known change (a soak's end, a window opening) or the next look, whichever is first.
      const next = Math.min(
        ...reasons.map((r) => (r.until ? Date.parse(r.until) : Number.POSITIVE_INFINITY)),
      );
      const ms = Math.max(10, Math.min(ctx.checkEveryMs, next - clock().getTime()));
      const woke = new AbortController();
      wake = () => woke.abort();
      await sleep(ms, AbortSignal.any([woke.signal, ac.signal])).catch(() => undefined);
      wake = undefined;
    }
  }

  /** The previous stage must still serve the version, and pass its own gates, when soak ends. */
  async function stillGood(prev: Stage): Promise<string | undefined> {
    const status = await prev.engine.status();
    if (status.serving !== version) {
      return `${version} no longer serves ${prev.name} (it serves ${status.serving ?? 'nothing'}): stopped before the next stage`;
    }
    if (prev.verify) {
      const gate = await verifyStage(prev);
      if (gate.verdict !== 'pass') return `${prev.name} failed its gates after soak: ${gate.reason}`;
    }
    return undefined;
  }

  async function verifyStage(stage: Stage): Promise<AnalysisResult> {
    const target = stage.target!;
    const described = await target.describe({ signal: ac.signal, logger });
    const pools = described.pools.filter((p) => p.version === version);
    const endpoint = described.endpoint ?? pools[0]?.endpoints[0] ?? '';
    const result = await runGate(
      `${stage.name}-pipeline-gate`,
      stage.verify!.verifiers,
      { environment: stage.engine.environment, version, pools, endpoint, target, signal: ac.signal, logger },
      { count: 1, ...stage.verify!.gate },
    );
    emit({ type: 'pipeline.stage.gate', stage: stage.name, result });
    return result;
  }

  async function runStage(
    stage: Stage,
    knownRunId: string | undefined,
    startedReal: string | undefined,
  ): Promise<{ result: RunResult; status: RunStatus; reason?: string | undefined; gate?: AnalysisResult }> {
    let stageRunId = knownRunId;
    if (!stageRunId && startedReal) stageRunId = await findStageRun(stage, startedReal);
    emit({ type: 'pipeline.stage.started', stage: stage.name, version, resumed: stageRunId !== undefined });
    let result: RunResult;
    if (stageRunId) {
      logger.info(`[${ctx.environment}] ${stage.name}: continuing stage run ${stageRunId}`);
      result = await stage.engine.resume(stageRunId, { signal: ac.signal });
      // The release may have finished long ago, and been undone since (by this pipeline's gate, or a human).
      const now = result.status === 'succeeded' ? (await stage.engine.status()).serving : version;
      if (now !== version) {
        const reason = `${stage.name} no longer serves ${version} (it serves ${now ?? 'nothing'})`;
        return { result, status: 'rolled-back', reason };
      }
    } else {
      const off = stage.engine.on('run.started', (e) => {
        if (stageRunId || e.version !== version || e.kind !== 'release') return;
        stageRunId = e.runId;
        append({ type: 'note', message: 'stage-run', data: { stage: stage.name, runId: e.runId } }).catch(
          (err) =>
            logger.warn(`[${ctx.environment}] could not journal stage run ${e.runId}`, {
              error: serializeError(err),
            }),
        );
      });
      try {
        result = await stage.engine.release({
          version,
          signal: ac.signal,
          reason: `pipeline ${ctx.name} run ${runId}`,
          labels: { pipeline: ctx.name, pipelineRun: runId },
        });
      } finally {
        off();
      }
    }
    if (result.status !== 'succeeded') return { result, status: result.status, reason: result.reason };
    if (!stage.verify) return { result, status: 'succeeded' };
    const gate = await verifyStage(stage);
    if (gate.verdict === 'pass') return { result, status: 'succeeded', gate };
    const reason = `${stage.name}: pipeline gate failed: ${gate.reason}`;
    if (!result.from)
      return { result, status: 'failed', reason: `${reason}; no earlier version to roll back to`, gate };
    try {
      const back = await stage.engine.rollback({ to: result.from, reason, confirm: 'CONFIRM' });
      return { result: back, status: back.status === 'succeeded' ? 'rolled-back' : 'failed', reason, gate };
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      return {
        result,
        status: 'failed',
        reason: `${reason}; the rollback to ${result.from} failed: ${why}`,
        gate,
      };
    }
  }

  /** A stage run started by a process that died before journaling its id: find it by version and time. */
  async function findStageRun(stage: Stage, started: string): Promise<string | undefined> {
    const status = await stage.engine.status();
    const interrupted = status.interrupted.find((r) => r.version === version && r.kind === 'release');
    if (interrupted) return interrupted.runId;
    // The engine's times are real time, like `started` (the pipeline's clock may be another).
    const history = await stage.engine.history();
    const done = history.findLast(
      (h) => h.version === version && h.kind === 'release' && h.startedAt >= started,
    );
    return done?.runId;
  }
}

/** The owner written into the pipeline's lease. */
export const ownerOf = (runId: string) => ({
  runId,
  pid: process.pid,
  host: hostname(),
  since: new Date().toISOString(),
});
