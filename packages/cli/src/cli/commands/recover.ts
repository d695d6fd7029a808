import { hostname } from 'node:os';
import { ConfigInvalidError, type RecoverOptions, RecoveryUnconfirmedError } from '@codegraph/release-core';
import { type CommandContext, openEngine, parse, positionals, versionArg } from '../context.js';
import { exitCodes } from '../exit.js';
import { drive } from './run.js';

type Values = { config?: string | undefined; env?: string | undefined; verbose?: boolean | undefined };

/** The arguments of a recovery, checked before the config is loaded: a refused recovery touches nothing. */
export function recoverRequest(
  command: string,
  v: {
    id?: string | undefined;
    at?: string | undefined;
    confirm?: string | undefined;
    reason?: string | undefined;
    version?: string | undefined;
  },
  idFlag: string,
): RecoverOptions {
  if (v.confirm !== 'CONFIRM') {
    throw new RecoveryUnconfirmedError(
      `${command} replaces the live data and needs --confirm CONFIRM (exactly, in capitals)${v.confirm === undefined ? '' : `, got ${JSON.stringify(v.confirm)}`}; nothing was changed`,
    );
  }
  if ((v.id === undefined) === (v.at === undefined)) {
    throw new ConfigInvalidError(
      `${command} takes ${idFlag} <id> or --at <ISO time> (one of them); nothing was changed`,
    );
  }
  if (v.at !== undefined && Number.isNaN(Date.parse(v.at))) {
    throw new ConfigInvalidError(
      `--at must be an ISO time, got ${JSON.stringify(v.at)}; nothing was changed`,
    );
  }
  if (v.version !== undefined) versionArg('--version', v.version);
  const reason =
    v.reason?.trim() ||
    (v.id !== undefined ? `recovery from backup ${v.id}` : `point-in-time recovery to ${v.at}`);
  return {
    backup: v.id !== undefined ? { id: v.id } : { at: v.at! },
    reason,
    confirm: v.confirm,
    ...(v.version !== undefined ? { version: v.version } : {}),
  };
}

/**
 * `codegraph-release recover --backup <id> | --at <time> --confirm CONFIRM`: the engine's recovery (lock,
 * journal, stop, move aside, restore, start, verify, integrity check, incident report; resumable).
 */
export async function recover(argv: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals: pos } = parse('recover', argv, {
    backup: { type: 'string' },
    at: { type: 'string' },
    confirm: { type: 'string' },
    reason: { type: 'string' },
    version: { type: 'string' },
    report: { type: 'string' },
  });
  positionals('recover', pos, []);
  const request = recoverRequest('recover', { ...values, id: values.backup }, '--backup');
  const open = await openEngine(ctx, values as Values);
  return drive(ctx, open, 'recover', values.report, (engine) => engine.recover(request));
}

/**
 * `backup restore`: data a service runs on is restored only through the engine's recovery (as `recover`);
 * when nothing serves in the environment (a new host, a stopped service) the backup is restored directly,
 * under the environment's lock. Either way a run holding the lock makes it exit 3 with nothing changed.
 */
export async function restoreCommand(
  values: Values & {
    id?: string | undefined;
    at?: string | undefined;
    confirm?: string | undefined;
    reason?: string | undefined;
    version?: string | undefined;
    report?: string | undefined;
  },
  ctx: CommandContext,
): Promise<number> {
  const request = recoverRequest('backup restore', values, '--id');
  const open = await openEngine(ctx, values);
  const { options, name: environment } = open.environment;
  const { out } = ctx;
  let closed = false;
  try {
    if (!options.backup) {
      throw new ConfigInvalidError(
        `environment ${environment} has no backup provider: add backup: ... to its config`,
      );
    }
    const serving = (await options.target.describe()).pools.some((p) => p.replicas > 0);
    if (serving || request.version !== undefined) {
      out.line(
        `[${environment}] the service runs on this data: restoring through a recovery (stop, restore, start, verify)`,
      );
      closed = true;
      return await drive(ctx, open, 'backup restore', values.report, (engine) => engine.recover(request));
    }
    const lock = await options.store.lock(environment, {
      runId: `backup-restore-${Date.now()}`,
      pid: process.pid,
      host: hostname(),
      since: new Date().toISOString(),
    });
    try {
      const wanted = request.backup;
      out.line(
        `[${environment}] nothing serves: restoring ${'id' in wanted ? wanted.id : `the newest backup at or before ${String(wanted.at)}`} ...`,
      );
      const r = await options.backup.restore('id' in wanted ? { id: wanted.id } : { at: wanted.at });
      out.line(`restored ${r.id}${r.movedAside ? `; the previous data was moved to ${r.movedAside}` : ''}`);
      out.json({ type: 'result', command: 'backup restore', exitCode: exitCodes.ok, restore: r });
      return exitCodes.ok;
    } finally {
      await lock.release();
    }
  } finally {
    if (!closed) await open.close();
  }
}
