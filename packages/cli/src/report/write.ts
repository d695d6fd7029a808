import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@codegraph/release-core/kit';
import { renderReportHtml } from './html.js';
import { renderReportMarkdown } from './markdown.js';
import type { RunRecording } from './types.js';

/**
 * Where {@link writeReport} wrote a report.
 *
 * @example
 * ```ts
 * const { html, markdown, json } = await writeReport(recording, 'reports')
 * ```
 */
export interface ReportFiles {
  /** The self-contained HTML report. */
  html: string;
  /** The Markdown report. */
  markdown: string;
  /** The recording itself, to render again later. */
  json: string;
}

/**
 * Options of {@link writeReport}.
 *
 * @example
 * ```ts
 * await writeReport(recording, 'reports', { basename: 'latest' }) // reports/latest.html, .md, .json
 * ```
 */
export interface WriteReportOptions {
  /** File name without extension. @default the run id, or `report` when no run was recorded */
  basename?: string;
}

/** A reader never sees half a report: core's atomic write (temp file, fsync, rename). */
const writeAtomic = (path: string, text: string): Promise<void> =>
  writeFileAtomic(path, text, { mode: 0o644 });

/**
 * Renders a recording and writes `<basename>.html`, `<basename>.md` and `<basename>.json` into `dir`
 * (created if missing). Returns the paths.
 *
 * @example
 * ```ts
 * const files = await writeReport(await recorder.stop(), '.release/reports')
 * console.log(`report: ${files.html}`)
 * ```
 */
export async function writeReport(
  recording: RunRecording,
  dir: string,
  options: WriteReportOptions = {},
): Promise<ReportFiles> {
  const base = (options.basename ?? recording.runId ?? 'report').replace(/[^A-Za-z0-9._-]/g, '-');
  await mkdir(dir, { recursive: true });
  const files: ReportFiles = {
    html: join(dir, `${base}.html`),
    markdown: join(dir, `${base}.md`),
    json: join(dir, `${base}.json`),
  };
  await writeAtomic(files.html, renderReportHtml(recording));
  await writeAtomic(files.markdown, renderReportMarkdown(recording));
  await writeAtomic(files.json, `${JSON.stringify(recording, null, 2)}\n`);
  return files;
}
