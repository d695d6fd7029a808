import type { JsonValue } from 'type-fest';
import type { VerifiedArtifact } from '../artifacts/verify.js';
import type { BackupInfo } from '../backup/types.js';

/**
 * What core itself records in a run header's `data` (`RunHeader.data`), by kind of run. Other keys may
 * be present (a store or an embedding platform may add its own); core reads only these, and checks
 * each before it uses it: a journal is read back, never trusted.
 *
 * @example
 * ```ts
 * const head = (await store.read(runId)).find((e) => e.type === 'run')
 * if (head?.type === 'run' && head.header.kind === 'release') console.log(head.header.data?.labels)
 * ```
 */
export interface RunData {
  /** release: the labels passed to `release({ labels })`. */
  labels?: Record<string, string> | undefined;
  /** release: the migration record passed to `release({ migration })`. */
  migration?: JsonValue | undefined;
  /**
   * release: the names of the catalog's migration steps to apply (`release({ migrations })`);
   * rollback: the migration records of the releases being undone, newest first.
   */
  migrations?: readonly unknown[] | undefined;
  /** release: the hotfix artifact verified before the run started. */
  artifact?: VerifiedArtifact | undefined;
  /** recovery: the backup chosen before the run started. */
  backup?: BackupInfo | undefined;
  /** recovery: how the backup was asked for. */
  request?: { id: string } | { at: string } | undefined;
  /** recovery: the pool and size that served the version to start, when one did. */
  pool?: string | undefined;
  replicas?: number | undefined;
  /** Anything else recorded with the run (JSON-safe). */
  [key: string]: unknown;
}
