import type { ReleaseEngine, Target } from '@codegraph/release-core';
import { recordRun } from '../report/index.js';
import { writeReport } from '../report/write.js';

/** A report being recorded for `--report <dir>`. */
export interface ReportSession {
  /** Stops recording and writes the report (HTML, Markdown, JSON); returns the HTML file's path. */
  finish(): Promise<string>;
  /** Stops recording without writing (the run never started). Idempotent. */
  cancel(): Promise<void>;
}

/**
 * Starts recording the run's events and per-pool traffic when `--report <dir>` was given
 * (`recordRun` from the report module); `finish` writes it with `writeReport`.
 */
export function startReport(
  engine: ReleaseEngine,
  dir: string | undefined,
  options: { target: Target; secrets: string[] },
): ReportSession | undefined {
  if (dir === undefined) return undefined;
  const recorder = recordRun(engine, { target: options.target, secrets: options.secrets });
  return {
    async finish() {
      const files = await writeReport(await recorder.stop(), dir);
      return files.html;
    },
    async cancel() {
      await recorder.stop();
    },
  };
}
