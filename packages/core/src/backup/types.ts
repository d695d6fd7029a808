import type { OperationContext } from '../context.js';

/** Why a backup was taken. */
export type BackupReason = 'pre-release' | 'pre-rollback' | 'scheduled' | 'manual' | 'pre-recovery';

/** What to back up and how to label it. */
export interface BackupRequest {
  reason: BackupReason;
  environment?: string;
  /** The version running when the backup is taken. */
  version?: string;
  /** Free-form labels stored in the manifest (run id, ticket...). */
  labels?: Record<string, string>;
}

/** A backup as listed: enough to choose one and to show it. */
export interface BackupInfo {
  id: string;
  /** ISO time the backup's snapshot was taken. */
  createdAt: string;
  reason: BackupReason;
  version?: string;
  labels: Record<string, string>;
  /** Logical size in bytes (sum of the files). */
  sizeBytes: number;
  files: number;
  /** Whether the last verification passed, when one ran. */
  verified?: boolean;
  /**
   * Set when the backup's own records cannot be trusted (an unreadable manifest, or one that disagrees with
   * its checksums or its authentication): it is listed so that nobody misses it, and restore refuses it with
   * `CG_BACKUP_CORRUPT`. Only `id` and `createdAt` (taken from the id) mean anything then.
   */
  damaged?: { reason: string };
}

/** How deep a verification goes. */
export type VerifyLevel = 'presence' | 'checksum' | 'scan';

/** A verification's outcome; `problems` names each bad file. */
export interface BackupVerification {
  id: string;
  ok: boolean;
  level: VerifyLevel;
  problems: Array<{ path: string; problem: 'missing' | 'size' | 'checksum' | 'scan'; detail: string }>;
}

/** Which backup to restore, and where. */
export interface RestoreRequest {
  /** The backup id. Exactly one of `id` and `at` is given. */
  id?: string;
  /** Point in time: the newest backup taken at or before this time. */
  at?: Date | string;
}

/** What a restore did. */
export interface RestoreResult {
  id: string;
  /** Where the data that was there before went (it is never deleted). */
  movedAside?: string;
}

/** Retention: a union policy; a backup kept by any rule stays. */
export interface RetentionPolicy {
  /** Keep the newest N backups. */
  keepLast?: number;
  /** Keep every backup within this many milliseconds of the newest. */
  maxAgeMs?: number;
}

/** What a prune removed and kept. */
export interface PruneResult {
  removed: string[];
  kept: string[];
  /** Bytes freed by garbage-collecting blobs no backup references. */
  freedBytes: number;
}

/**
 * Protects data before releases and rollbacks. The engine calls `create` before a release and
 * before an emergency rollback, and records the id in the journal.
 *
 * @example
 * ```ts
 * const backup = {
 *   name: 'tarball',
 *   async create(req) { ...; return info },
 *   async list() { return infos },
 *   async verify(id) { return { id, ok: true, level: 'checksum', problems: [] } },
 *   async restore({ id }) { ...; return { id } },
 * } satisfies BackupProvider
 * ```
 */
export interface BackupProvider {
  readonly name: string;
  create(request: BackupRequest, ctx?: OperationContext): Promise<BackupInfo>;
  list(ctx?: OperationContext): Promise<BackupInfo[]>;
  verify(id: string, options?: { level?: VerifyLevel } & OperationContext): Promise<BackupVerification>;
  restore(request: RestoreRequest, ctx?: OperationContext): Promise<RestoreResult>;
  /** Applies a retention policy. Optional capability. */
  prune?(policy: RetentionPolicy, ctx?: OperationContext): Promise<PruneResult>;
}
