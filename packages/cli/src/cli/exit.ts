import type { RunStatus } from '@codegraph/release-core';

/**
 * The exit codes of `codegraph-release`, in one place (also in `--help` and docs/operations.md).
 *
 * @example
 * ```ts
 * if (child.exitCode === exitCodes.locked) console.log('another release holds the environment')
 * ```
 */
export const exitCodes = Object.freeze({
  /** The command did what it was asked: released and verified, every check passed, backup verified. */
  ok: 0,
  /** The run was rolled back (traffic is on the previous, verified version), a check failed, or a backup is corrupt. */
  failed: 1,
  /** Bad arguments or configuration; nothing was changed. */
  usage: 2,
  /** The environment is locked by a live run, or an interrupted run must be resumed or rolled back first. */
  locked: 3,
  /** The version, run or backup asked for is not known. */
  notFound: 4,
  /** The run failed without reaching a verified state, or the target/store/a plugin failed: a human must look. */
  broken: 5,
  /** Stopped by a second SIGINT/SIGTERM before the undo finished. */
  interrupted: 130,
});

/**
 * One of the {@link exitCodes}.
 *
 * @example
 * ```ts
 * const code: ExitCode = exitCodes.notFound
 * ```
 */
export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes];

const byCode: Record<string, ExitCode> = {
  CG_CONFIG_INVALID: exitCodes.usage,
  CG_ROLLBACK_UNCONFIRMED: exitCodes.usage,
  CG_RECOVERY_UNCONFIRMED: exitCodes.usage,
  CG_ARTIFACT_INVALID: exitCodes.usage,
  CG_CAPABILITY_MISSING: exitCodes.usage,
  CG_CONTROL_INVALID: exitCodes.usage,
  CG_ENVIRONMENT_LOCKED: exitCodes.locked,
  CG_RUN_INTERRUPTED: exitCodes.locked,
  CG_VERSION_UNKNOWN: exitCodes.notFound,
  CG_RUN_NOT_FOUND: exitCodes.notFound,
  CG_BACKUP_NOT_FOUND: exitCodes.notFound,
  CG_BACKUP_CORRUPT: exitCodes.failed,
  CG_ANALYSIS_FAILED: exitCodes.failed,
  CG_ABORTED: exitCodes.failed,
  CG_MIGRATION_FAILED: exitCodes.failed,
};

/** The exit code of an error by its `CG_*` code; anything else is {@link exitCodes.broken}. */
export function exitCodeOf(code: string | undefined): ExitCode {
  return (code !== undefined ? byCode[code] : undefined) ?? exitCodes.broken;
}

/** The exit code of a finished run. */
export function exitCodeOfRun(status: RunStatus): ExitCode {
  if (status === 'succeeded') return exitCodes.ok;
  if (status === 'failed') return exitCodes.broken;
  return exitCodes.failed;
}
