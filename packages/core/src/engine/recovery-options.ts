import type { BackupInfo, VerifyLevel } from '../backup/types.js';
import { BackupNotFoundError, ConfigInvalidError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Target } from '../target/types.js';

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
