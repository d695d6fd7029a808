import { lstat, rename } from 'node:fs/promises';
import type { BackupInfo, BackupVerification, RestoreResult, VerifyLevel } from '../backup/types.js';
import { BackupCorruptError, BackupNotFoundError, ConfigInvalidError, wrapPluginError } from '../errors.js';
import type { RunStatus } from '../events/types.js';
import type { Logger } from '../logger.js';
import type { Target } from '../target/types.js';
import { poolName } from '../target/types.js';
import { targetCall } from './actions.js';
import { type FlowDeps, RunScope } from './run-scope.js';
import type { RunResult } from './types.js';

/**
 * What the recovery's `stop` and `start` hooks receive.
 *
 * @example
 * ```ts
 * const start = async ({ target, pool, version, replicas, signal }: RecoveryContext) => {
 *   await target.provision({ pool, version, replicas }, { signal })
 * }
 * ```
 */
export interface RecoveryContext {
  environment: string;
  /** The version the service runs after the recovery. */
  version: string;
  /** The pool that serves it. */
  pool: string;
  replicas: number;
  target: Target;
  signal: AbortSignal;
  logger: Logger;
}

/**
 * How the engine's `recover()` stops and starts the service and where its data lives (the engine's
 * `recovery` option). The backup provider restores its own components (the database, the vector index,
 * the configuration: `rocksdbBackup({ extras: { config } })`); `data` lists directories the engine
 * itself moves aside first, as the runbook's `mv data data.pre-recovery.<time>`.
 *
 * @example
 * ```ts
 * const recovery: RecoveryOptions = {
 *   stop: async () => { await exec('systemctl stop codegraph') },
 *   start: async () => { await exec('systemctl start codegraph') },
 *   data: ['/opt/codegraph/data/vector'],
 *   integrity: 'scan',
 * }
 * ```
 */
export interface RecoveryOptions {
  /**
   * Stops the service so its data can be replaced. Runs again on resume: make it idempotent.
   * @default all traffic drained (`route({})`, the front answers 503), then every pool of the target scaled
   * to 0 replicas through `provision`
   */
  stop?: (ctx: RecoveryContext) => Promise<void>;
  /**
   * Starts the service on the restored data. Runs again on resume: make it idempotent.
   * @default the pool `poolName(version)` provisioned at `replicas` and given all traffic
   */
  start?: (ctx: RecoveryContext) => Promise<void>;
  /** Directories moved aside to `<dir>.pre-recovery.<YYYYmmdd_HHMMSS>` before the restore; never deleted. @default [] */
  data?: string[];
  /** Depth of the integrity check of the restored backup (`BackupProvider.verify`). @default 'checksum' */
  integrity?: VerifyLevel;
}

/** The defaults of {@link RecoveryOptions}, in one place. */
export const recoveryDefaults = { data: [] as string[], integrity: 'checksum' as VerifyLevel } as const;

/**
 * Arguments of `engine.recover()`.
 *
 * @example
 * ```ts
 * const options: RecoverOptions = { backup: { at: '2026-11-25T14:00:00Z' }, reason: 'bad import at 14:02', confirm: 'CONFIRM' }
 * ```
 */
export interface RecoverOptions {
  /** The backup to restore: an id, or a point in time (the newest backup taken at or before it). */
  backup: { id: string } | { at: Date | string };
  /** Why, for the incident report. */
  reason: string;
  /** Must be exactly `'CONFIRM'`: a recovery replaces live data. */
  confirm: string;
  /** The version to start. @default the serving version, else the backup's, else the last good one */
  version?: string;
  signal?: AbortSignal;
}

/** What `recover()` records in the run header before the run starts. */
export interface RecoveryPlan {
  backup: BackupInfo;
  request: { id: string } | { at: string };
  pool?: string;
  replicas?: number;
}

/**
 * Picks the backup a recovery asks for: `id` exactly, or the newest taken at or before `at`. Never falls
 * back to another backup: no match is `CG_BACKUP_NOT_FOUND`, a malformed request `CG_CONFIG_INVALID`.
 *
 * @example
 * ```ts
 * const chosen = pickBackup(await backup.list(), { at: '2026-11-25T14:00:00Z' })
 * ```
 */
export function pickBackup(list: readonly BackupInfo[], wanted: RecoverOptions['backup']): BackupInfo {
  const w = wanted as { id?: unknown; at?: unknown } | undefined;
  if (!w || typeof w !== 'object' || (w.id === undefined) === (w.at === undefined)) {
    throw new ConfigInvalidError(
      'recover needs backup: { id } or backup: { at } (exactly one); nothing was changed',
    );
  }
  if (w.id !== undefined) {
    if (typeof w.id !== 'string' || w.id === '') throw new ConfigInvalidError('backup.id must be a string');
    const found = list.find((b) => b.id === w.id);
    if (!found)
      throw new BackupNotFoundError(`no backup has the id ${JSON.stringify(w.id)}; nothing was changed`);
    return found;
  }
  const at = w.at instanceof Date ? w.at : typeof w.at === 'string' ? new Date(w.at) : new Date(Number.NaN);
  if (Number.isNaN(at.getTime()))
    throw new ConfigInvalidError(`backup.at is not a time: ${JSON.stringify(w.at)}; nothing was changed`);
  let best: BackupInfo | undefined;
  for (const b of list) {
    const t = Date.parse(b.createdAt);
    if (t <= at.getTime() && (!best || t >= Date.parse(best.createdAt))) best = b;
  }
  if (!best)
    throw new BackupNotFoundError(
      `no backup was taken at or before ${at.toISOString()}; nothing was changed`,
    );
  return best;
}

const exists = (p: string) =>
  lstat(p).then(
    () => true,
    () => false,
  );

/** Moves `dir` aside under the runbook's name, deterministically per run, so a resumed step converges. */
async function moveAside(dir: string, startedAt: string, runId: string) {
  const stamp = startedAt.replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
  const plain = `${dir}.pre-recovery.${stamp}`;
  const unique = `${plain}.${runId.slice(-6)}`;
  if (!(await exists(dir))) {
    // Already moved by this run before a crash, or there was nothing to move.
    const moved = (await exists(unique)) ? unique : (await exists(plain)) ? plain : undefined;
    return { dir, movedAside: moved ?? null };
  }
  const to = (await exists(plain)) ? unique : plain;
  await rename(dir, to);
  return { dir, movedAside: to };
}

async function defaultStop(d: FlowDeps, ctx: RecoveryContext) {
  // Traffic leaves first (maintenance: the front answers 503), so no pool is scaled down while it serves.
  const route = ctx.target.route?.bind(ctx.target);
  if (route) {
    await targetCall(d.env, 'stop', 'route {}', () => route({}, ctx), ctx.signal);
    d.env.onWeights({});
  }
  const state = await targetCall(
    d.env,
    'stop',
    'describe',
    () => ctx.target.describe({ signal: ctx.signal }),
    ctx.signal,
  );
  for (const p of state.pools) {
    await targetCall(
      d.env,
      'stop',
      `scale ${p.name} to 0`,
      () => ctx.target.provision({ pool: p.name, version: p.version, replicas: 0 }, ctx),
      ctx.signal,
    );
  }
}

async function defaultStart(d: FlowDeps, ctx: RecoveryContext) {
  const { target, pool, version, replicas, signal } = ctx;
  await d.journal.step('start/provision', () =>
    targetCall(
      d.env,
      'start',
      `provision ${pool}`,
      () => target.provision({ pool, version, replicas }, ctx),
      signal,
    ),
  );
  const route = target.route?.bind(target);
  if (route) {
    await d.journal.step('start/route', async () => {
      await targetCall(d.env, 'start', 'route', () => route({ [pool]: 100 }, ctx), signal);
      d.env.onWeights({ [pool]: 100 });
      return { weights: { [pool]: 100 } };
    });
  }
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * The runbook's full (or point-in-time) recovery: stop, move current data aside, restore the backup
 * (configuration included when the provider backs it up), start, verify with the validation suite,
 * check the backup's integrity, and report an incident. Every step is journaled, so `resume()` continues it.
 */
export async function runRecovery(d: FlowDeps, resumed: boolean): Promise<RunResult> {
  const run = new RunScope(d);
  const h = d.journal.header;
  const version = h.version;
  const plan = h.data as unknown as RecoveryPlan;
  const provider = d.options.backup!;
  const opts = d.options.recovery ?? {};
  const backupId = plan.backup.id;
  d.emit({ type: 'run.started', version, reason: h.reason, ...(resumed ? { resumed } : {}) });
  let from: string | undefined;
  const incident = (ok: boolean, why: string) => ({
    severity: ok ? ('P1' as const) : ('P0' as const),
    summary: ok
      ? `recovery of ${h.environment} from backup ${backupId} succeeded; ${version} serves the restored data`
      : `recovery of ${h.environment} from backup ${backupId} failed`,
    reason: why,
    from,
    to: version,
    backupId,
  });
  try {
    const pre = await run.preflight(d.signal);
    from = pre.stable?.version;
    const ctx: RecoveryContext = {
      environment: h.environment,
      version,
      pool: plan.pool ?? pre.stable?.name ?? poolName(version),
      replicas: plan.replicas ?? pre.stable?.replicas ?? d.options.replicas ?? 1,
      target: d.options.target,
      signal: d.signal,
      logger: d.logger,
    };
    run.taken.push(`chose backup ${backupId} taken ${plan.backup.createdAt}`);
    await run.phase('stop', () =>
      d.journal.step('stop', async () => {
        await (opts.stop ? opts.stop(ctx) : defaultStop(d, ctx));
        return null;
      }),
    );
    run.taken.push('service stopped');
    const restored = await run.phase('restore', async () => {
      for (const [i, dir] of (opts.data ?? recoveryDefaults.data).entries()) {
        const moved = await d.journal.step(`restore/aside/${i}`, () => moveAside(dir, h.startedAt, h.runId), {
          dir,
        });
        if (moved.movedAside) run.taken.push(`moved ${dir} aside to ${moved.movedAside}`);
      }
      return d.journal.step<RestoreResult>('restore', async () => {
        try {
          return await provider.restore({ id: backupId }, { signal: d.signal, logger: d.logger });
        } catch (err) {
          throw wrapPluginError(err, `backup ${provider.name}`, 'restore');
        }
      });
    });
    run.taken.push(
      `restored backup ${backupId}${restored.movedAside ? ` (previous data moved to ${restored.movedAside})` : ''}`,
    );
    await run.phase('start', () =>
      opts.start
        ? d.journal.step('start', async () => {
            await opts.start!(ctx);
            return null;
          })
        : defaultStart(d, ctx),
    );
    run.taken.push(`started ${version}`);
    const verdict = await run.phase('verify', () => run.verify('verify', version, d.signal));
    const check = await run.phase('integrity', () =>
      d.journal.step<BackupVerification>('integrity', async () => {
        try {
          return await provider.verify(backupId, {
            level: opts.integrity ?? recoveryDefaults.integrity,
            signal: d.signal,
            logger: d.logger,
          });
        } catch (err) {
          throw wrapPluginError(err, `backup ${provider.name}`, 'integrity');
        }
      }),
    );
    run.taken.push(
      `integrity check (${check.level}) of ${backupId}: ${check.ok ? 'ok' : `${check.problems.length} problem(s)`}`,
    );
    const ok = verdict.verdict === 'pass' && check.ok;
    const why = ok
      ? (h.reason ?? 'recovery')
      : verdict.verdict !== 'pass'
        ? `${version} did not verify after the restore: ${verdict.reason}`
        : `backup ${backupId} failed its integrity check: ${check.problems.map((p) => p.path).join(', ')}`;
    const status: RunStatus = ok ? 'succeeded' : 'failed';
    const error = check.ok
      ? undefined
      : new BackupCorruptError(why, { details: { problems: check.problems } });
    return await run.finish(
      status,
      { from, serving: verdict.verdict === 'pass' ? version : undefined, reason: why, backupId, error },
      incident(ok, h.reason ?? why),
    );
  } catch (err) {
    return run.finish(
      'failed',
      { from, reason: `recovery failed: ${message(err)}`, error: err, backupId },
      incident(false, message(err)),
    );
  }
}
