import type { RetentionPolicy } from '@codegraph/release-core';
import { ConfigInvalidError } from '@codegraph/release-core';

/**
 * Why a backup is kept.
 *
 * @example
 * ```ts
 * planRetention(backups, { keepLast: 1 }).reasons // { '2026…': ['keep-last'], '2025…': ['last-verified'] }
 * ```
 */
export type RetentionRule = 'keep-last' | 'max-age' | 'last-verified';

/**
 * What retention needs to know of a backup (a `BackupInfo` from `list()` fits).
 *
 * @example
 * ```ts
 * const candidate: RetentionCandidate = { id: 'b1', createdAt: '2026-11-01T02:00:00Z', verified: true }
 * ```
 */
export interface RetentionCandidate {
  id: string;
  createdAt: string;
  /** Whether its last verification passed. */
  verified?: boolean;
}

/**
 * The outcome of {@link planRetention}: ids newest first, and the rules that keep each kept one.
 *
 * @example
 * ```ts
 * const { keep, remove } = planRetention(await backup.list(), { maxAgeMs: 30 * 86_400_000 })
 * ```
 */
export interface RetentionPlan {
  keep: string[];
  remove: string[];
  reasons: Record<string, RetentionRule[]>;
}

/** Checks a policy; throws {@link ConfigInvalidError} before anything is removed. */
export function checkRetentionPolicy(policy: RetentionPolicy): void {
  const { keepLast, maxAgeMs } = policy ?? {};
  if (keepLast === undefined && maxAgeMs === undefined) {
    throw new ConfigInvalidError('a retention policy needs keepLast, maxAgeMs or both', {
      plugin: 'backup-rocksdb',
    });
  }
  if (keepLast !== undefined && (!Number.isSafeInteger(keepLast) || keepLast < 1)) {
    throw new ConfigInvalidError(`keepLast must be a whole number of at least 1, not ${String(keepLast)}`, {
      plugin: 'backup-rocksdb',
    });
  }
  if (maxAgeMs !== undefined && (!Number.isFinite(maxAgeMs) || maxAgeMs < 0)) {
    throw new ConfigInvalidError(`maxAgeMs must be a number of milliseconds >= 0, not ${String(maxAgeMs)}`, {
      plugin: 'backup-rocksdb',
    });
  }
}

/**
 * Decides which backups a retention policy keeps. The policy is a union: a backup stays when it is one of
 * the newest `keepLast`, or was taken within `maxAgeMs` of the newest backup (not of the clock, so a
 * system that stopped taking backups does not lose them all), or is the newest backup whose last
 * verification passed, which is never removed.
 *
 * @example
 * ```ts
 * planRetention(await backup.list(), { keepLast: 7, maxAgeMs: 30 * 24 * 3600_000 }).remove
 * ```
 */
export function planRetention(
  backups: readonly RetentionCandidate[],
  policy: RetentionPolicy,
): RetentionPlan {
  checkRetentionPolicy(policy);
  const newestFirst = [...backups].sort(
    (a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || b.id.localeCompare(a.id),
  );
  const reasons: Record<string, RetentionRule[]> = {};
  const add = (id: string, rule: RetentionRule) => {
    reasons[id] = [...(reasons[id] ?? []), rule];
  };
  const newest = newestFirst[0] ? Date.parse(newestFirst[0].createdAt) : 0;
  newestFirst.forEach((b, i) => {
    if (policy.keepLast !== undefined && i < policy.keepLast) add(b.id, 'keep-last');
    if (policy.maxAgeMs !== undefined && newest - Date.parse(b.createdAt) <= policy.maxAgeMs)
      add(b.id, 'max-age');
  });
  const lastVerified = newestFirst.find((b) => b.verified === true);
  if (lastVerified) add(lastVerified.id, 'last-verified');
  return {
    keep: newestFirst.filter((b) => reasons[b.id]).map((b) => b.id),
    remove: newestFirst.filter((b) => !reasons[b.id]).map((b) => b.id),
    reasons,
  };
}
