import { ConfigInvalidError, RollbackUnconfirmedError, VersionUnknownError } from '../errors.js';
import { isStepsRecord } from '../migrations/steps.js';
import type { HistoryEntry } from '../store/types.js';
import { checkVersion } from './config.js';
import type { EngineContext } from './run-start.js';
import type { RollbackOptions } from './types.js';

/** Versions the history knows as released and good: what a successful run left serving. */
export function knownGoodVersions(history: readonly HistoryEntry[]): Set<string> {
  const good = new Set<string>();
  for (const h of history) if (h.status === 'succeeded' && h.serving) good.add(h.serving);
  return good;
}

/** Migration records of the releases that succeeded after `to` last served, newest first. */
export function migrationsSince(history: readonly HistoryEntry[], to: string): unknown[] {
  const out: unknown[] = [];
  for (let i = history.length - 1; i >= 0; i--) {
    const h = history[i]!;
    if (h.serving === to && h.status === 'succeeded') break;
    if (h.kind === 'release' && h.status === 'succeeded' && h.migration !== undefined) out.push(h.migration);
  }
  return out;
}

/**
 * The emergency rollback's first phase, before the lock and before anything changes: the exact
 * confirmation, a reason, a version the history knows as good (or a known tag), and a way to undo the
 * schema of every release being undone. Returns those releases' migration records.
 */
export async function validateRollback(ctx: EngineContext, o: RollbackOptions): Promise<unknown[]> {
  const { options } = ctx;
  const environment = options.environment;
  if (o?.confirm !== 'CONFIRM') {
    throw new RollbackUnconfirmedError(
      "an emergency rollback needs confirm: 'CONFIRM' (exactly, in capitals); nothing was changed",
    );
  }
  checkVersion(o.to, 'rollback target');
  if (typeof o.reason !== 'string' || o.reason.trim() === '') {
    throw new ConfigInvalidError(
      'an emergency rollback needs a reason for the incident report; nothing was changed',
    );
  }
  let history: HistoryEntry[] = [];
  let unreadable = '';
  try {
    history = await options.store.history(environment);
  } catch (err) {
    // A damaged history never blocks a rollback to a version named in `knownVersions`.
    unreadable = ` (the history could not be read: ${ctx.redactor.string(err instanceof Error ? err.message : String(err))})`;
    ctx.logger.warn(`[${environment}] emergency rollback: the history could not be read${unreadable}`);
  }
  const good = knownGoodVersions(history);
  if (!good.has(o.to) && !(options.knownVersions ?? []).includes(o.to)) {
    const list = [...good].join(', ') || 'none yet';
    throw new VersionUnknownError(
      `version ${o.to} is not known as released and good in ${environment} (known: ${list})${unreadable}; nothing was changed`,
    );
  }
  const migrations = migrationsSince(history, o.to);
  const catalog = new Set((options.migrations ?? []).map((m) => m.name));
  const undoable = migrations.every((m) => isStepsRecord(m) && m.steps.every((s) => catalog.has(s.name)));
  if (migrations.length > 0 && !options.databaseRollback && !undoable) {
    throw new ConfigInvalidError(
      `releases after ${o.to} recorded ${migrations.length} migration(s) but the engine has no databaseRollback hook; add one so the schema can be rolled back; nothing was changed`,
    );
  }
  return migrations;
}
