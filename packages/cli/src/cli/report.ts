import { ConfigInvalidError, type ReleaseEngine, type Target } from '@codegraph/release-core';

// Seam for the release report (packages/cli/src/report): recordRun(engine, { target, secrets }) while the
// run goes, then writeReport(recording, dir). Wired once the report module is committed.

/** A report being recorded for `--report <dir>`. */
export interface ReportSession {
  /** Stops recording and writes the report; returns the HTML file's path. */
  finish(): Promise<string>;
}

/** Starts recording when `--report` was given. */
export function startReport(
  _engine: ReleaseEngine,
  dir: string | undefined,
  _options: { target: Target; secrets: string[] },
): ReportSession | undefined {
  if (dir === undefined) return undefined;
  throw new ConfigInvalidError('--report is not available in this build yet');
}
