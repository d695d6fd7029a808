import { describe, expect, it } from 'vitest';
import { exitCodeOf, exitCodeOfRun, exitCodes } from '../src/cli/exit.js';

describe('exit codes', () => {
  it('maps every refusal that changed nothing to 2, and failed-but-safe outcomes to 1', () => {
    for (const code of [
      'CG_CONFIG_INVALID',
      'CG_ROLLBACK_UNCONFIRMED',
      'CG_RECOVERY_UNCONFIRMED',
      'CG_ARTIFACT_INVALID',
    ]) {
      expect(exitCodeOf(code), code).toBe(exitCodes.usage);
    }
    for (const code of ['CG_ANALYSIS_FAILED', 'CG_ABORTED', 'CG_MIGRATION_FAILED', 'CG_BACKUP_CORRUPT']) {
      expect(exitCodeOf(code), code).toBe(exitCodes.failed);
    }
    expect(exitCodeOf('CG_ENVIRONMENT_LOCKED')).toBe(exitCodes.locked);
    expect(exitCodeOf('CG_VERSION_UNKNOWN')).toBe(exitCodes.notFound);
    // Anything unknown means a human must look.
    expect(exitCodeOf('CG_SOMETHING_NEW')).toBe(exitCodes.broken);
    expect(exitCodeOf(undefined)).toBe(exitCodes.broken);
  });

  it('maps run outcomes: succeeded 0, rolled back 1, failed 5', () => {
    expect([exitCodeOfRun('succeeded'), exitCodeOfRun('rolled-back'), exitCodeOfRun('failed')]).toEqual([
      0, 1, 5,
    ]);
  });
});
