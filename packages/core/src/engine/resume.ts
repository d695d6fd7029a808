import { ConfigInvalidError } from '../errors.js';
import type { JournalEntry, RunHeader } from '../store/types.js';
import { runRelease, runRollback } from './flows.js';
import type { Journal } from './journal.js';
import { runRecovery } from './recovery.js';
import { type EngineContext, execute, guardedJournal, lockOwner } from './run-start.js';
import type { RunResult } from './types.js';

/** The header of a journal that belongs to this engine's environment, checked before it is trusted. */
export function headerOf(ctx: EngineContext, runId: string, entries: readonly JournalEntry[]): RunHeader {
  const head = entries.find((e) => e.type === 'run');
  const env = ctx.options.environment;
  if (head?.type !== 'run' || head.header?.environment !== env || head.header.runId !== runId)
    throw new ConfigInvalidError(`run ${runId} does not belong to environment ${env}`);
  return head.header;
}

/**
 * Continues a run whose process died (or that stopped on a lost lease or store), from its journal:
 * the strategy is replayed with the recorded outcomes up to the first unfinished step. A finished run
 * returns its result without acting; a superseded one says so.
 */
export async function resumeRun(
  ctx: EngineContext,
  runId: string,
  o: { signal?: AbortSignal | undefined },
): Promise<RunResult> {
  const { options } = ctx;
  const { store, strategy, target, environment } = options;
  const entries = await store.read(runId);
  const header = headerOf(ctx, runId, entries);
  const end = entries.findLast((e) => e.type === 'finished');
  if (end?.type === 'finished' && end.status === 'superseded') {
    const finishedAt = end.time;
    return {
      runId,
      kind: header.kind,
      environment,
      status: 'superseded',
      version: header.version,
      reason: end.reason,
      analyses: [],
      startedAt: header.startedAt,
      finishedAt,
      durationMs: Date.parse(finishedAt) - Date.parse(header.startedAt),
    };
  }
  // Replaying a journal with another strategy or target would take other actions than the ones recorded.
  if (header.strategy !== strategy.name || header.target !== target.name) {
    throw new ConfigInvalidError(
      `run ${runId} was started with strategy ${header.strategy} on target ${header.target}; resume it with an engine configured the same way (this one has ${strategy.name} on ${target.name})`,
    );
  }
  return ctx.registry.track(
    (async () => {
      const lock = await store.lock(environment, lockOwner(runId));
      let journal: Journal;
      try {
        journal = guardedJournal(ctx, header, lock, await store.read(runId));
      } catch (err) {
        await lock.release().catch(() => {});
        throw err;
      }
      const kind = header.kind;
      const flow = kind === 'rollback' ? runRollback : kind === 'recovery' ? runRecovery : runRelease;
      return execute(ctx, lock, journal, flow, kind, o.signal, true);
    })(),
  );
}
