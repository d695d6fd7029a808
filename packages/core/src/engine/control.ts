import { hostname } from 'node:os';
import { EnvironmentLockedError, ReleaseError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ControlOutcome, ControlRequest, Lock, LockOwner, Store } from '../store/types.js';

// Control from other processes, through the store: a run in progress consumes the requests addressed
// to it (promote, abort, supersede) and journals what it did; an emergency rollback from another
// process asks the run holding the environment to step aside instead of failing on the lock.

/** How long an emergency rollback waits for the run it superseded to answer. */
export const supersedeReplyMs = 10_000;
/** How long an emergency rollback waits for the superseded run to undo itself and release the lock. */
export const supersedeReleaseMs = 120_000;

/** What the engine does for one of its runs when a control request arrives. */
export interface RunControls {
  environment: string;
  runId: string;
  /** Lets the run pass one pause (all of them with `full`); false when the run is not active. */
  promote(full: boolean): boolean;
  /** Aborts the run (it undoes itself); false when it is not active. */
  abort(reason: string): boolean;
  /** Journals a note in the run. */
  note(message: string, data?: unknown): Promise<void>;
  logger: Logger;
}

/** What the run does with one request. */
export function applyControl(request: ControlRequest, run: RunControls): ControlOutcome {
  const reason = request.reason ?? 'no reason given';
  switch (request.action) {
    case 'promote':
      return run.promote(request.full === true)
        ? {
            applied: true,
            message: request.full ? 'promoted: remaining pauses skipped' : 'promoted: one pause passed',
          }
        : { applied: false, message: `run ${run.runId} is not active (finishing): nothing to promote` };
    case 'abort':
      return run.abort(reason)
        ? { applied: true, message: 'aborted: the run is undoing itself' }
        : { applied: false, message: `run ${run.runId} is not active (finishing): nothing to abort` };
    case 'supersede':
      return run.abort(`superseded by an emergency rollback: ${reason}`)
        ? { applied: true, message: 'superseded: the run is undoing itself and releases the environment' }
        : { applied: false, message: `run ${run.runId} is finishing: it releases the environment shortly` };
    case 'approve':
      return {
        applied: false,
        message: 'approvals are for pipeline stages; a single run has nothing to approve',
      };
    default:
      return { applied: false, message: `unknown action ${JSON.stringify(request.action)}` };
  }
}

/**
 * Subscribes a run to its control requests once it holds `lock`, and returns a lock whose `release()`
 * stops the subscription first: no request is consumed by a run that no longer holds the environment.
 */
export async function controlRun(store: Store, lock: Lock, run: RunControls): Promise<Lock> {
  const sub = await store.watchControl(run.environment, run.runId, async (request) => {
    const outcome = applyControl(request, run);
    const line = `${request.action}${request.full ? ' --full' : ''} requested from another process (request ${request.id}${request.by ? ` by ${request.by}` : ''}): ${outcome.applied ? 'applied' : 'not applied'}`;
    run.logger.info(`[${run.environment}] ${line}`);
    await run
      .note(line, {
        control: { id: request.id, action: request.action, applied: outcome.applied, reason: request.reason },
      })
      .catch((err) => run.logger.warn(`[${run.environment}] could not journal ${line}: ${String(err)}`));
    return outcome;
  });
  return {
    environment: lock.environment,
    owner: lock.owner,
    token: lock.token,
    lost: lock.lost,
    async release() {
      await sub.stop();
      await lock.release();
    },
  };
}

/** Options of {@link lockSuperseding}. */
export interface SupersedeOptions {
  /** Why: sent to the superseded run (redacted by the caller), at most 1,000 characters. */
  reason: string;
  logger: Logger;
  signal?: AbortSignal | undefined;
  /** @default {@link supersedeReplyMs} */
  replyMs?: number;
  /** @default {@link supersedeReleaseMs} */
  releaseMs?: number;
}

/**
 * Takes the environment's lock for an emergency rollback. When a run of another process (or another
 * engine) holds it, sends that run a `supersede` request, waits (bounded) for its answer and for the
 * lock to be released, then takes it. Throws `CG_ENVIRONMENT_LOCKED` when the holder does not answer
 * or does not let go in time.
 */
export async function lockSuperseding(
  store: Store,
  environment: string,
  owner: LockOwner,
  o: SupersedeOptions,
): Promise<Lock> {
  try {
    return await store.lock(environment, owner);
  } catch (err) {
    if (!(err instanceof ReleaseError) || err.code !== 'CG_ENVIRONMENT_LOCKED') throw err;
    const holder = await store.lockOwner(environment);
    if (!holder) return store.lock(environment, owner);
    const where = `run ${holder.runId} (pid ${holder.pid} on ${holder.host})`;
    o.logger.warn(
      `[${environment}] ${where} holds the environment: asking it to step aside for the emergency rollback`,
    );
    const request = await store.sendControl({
      environment,
      runId: holder.runId,
      action: 'supersede',
      reason: o.reason.slice(0, 1_000),
    });
    const reply = await store.waitForReply(environment, request.id, {
      timeoutMs: o.replyMs ?? supersedeReplyMs,
      signal: o.signal,
    });
    if (!reply && (await store.withdrawControl(environment, request.id))) {
      throw new EnvironmentLockedError(
        `${where} holds ${environment} and did not answer the emergency rollback's supersede request within ${o.replyMs ?? supersedeReplyMs} ms${holder.host === hostname() ? '' : ' (is it running an older version, or a store without control?)'}; stop it, or wait for it to finish, then roll back again`,
        { details: { owner: holder } },
      );
    }
    o.logger.warn(
      `[${environment}] ${where}: ${reply?.message ?? 'took the supersede request'}; waiting for the lock`,
    );
    const deadline = Date.now() + (o.releaseMs ?? supersedeReleaseMs);
    for (;;) {
      try {
        return await store.lock(environment, owner);
      } catch (again) {
        if (!(again instanceof ReleaseError) || again.code !== 'CG_ENVIRONMENT_LOCKED') throw again;
        const now = await store.lockOwner(environment);
        if (now && now.runId !== holder.runId) throw again; // someone else took it meanwhile
        if (Date.now() > deadline || o.signal?.aborted) {
          throw new EnvironmentLockedError(
            `${where} took the supersede request but still holds ${environment} after ${o.releaseMs ?? supersedeReleaseMs} ms; its undo may still be running: look at it, then roll back again`,
            { details: { owner: holder }, cause: again },
          );
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}
