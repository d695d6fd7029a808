import { escapeMarkdown } from '@codegraph/release-core/kit';
import { buildModel, formatDuration, formatValue, type ReportModel } from './model.js';
import type { RunRecording } from './types.js';

/**
 * Keeps text from a run as text: no link, image, HTML, emphasis or new block can come out of a version,
 * a reason or a check's message (pipes and line breaks are escaped too, so it fits a table cell).
 */
const txt = (v: unknown) => escapeMarkdown(String(v ?? '-'));
const cell = txt;

const table = (head: string[], rows: unknown[][]) =>
  [
    `| ${head.map(cell).join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');

/** Per pool: requests, errors, error rate and the worst interval p95, from the traffic samples. */
function trafficSummary(m: ReportModel): string {
  const pools = m.pools.filter((p) => m.traffic.some((s) => s.pool === p));
  if (pools.length === 0) return m.notes[0] ?? 'No traffic was sampled.';
  const rows = pools.map((pool) => {
    const samples = m.traffic.filter((s) => s.pool === pool);
    const requests = samples.reduce((n, s) => n + s.intervalRequests, 0);
    const errors = samples.reduce((n, s) => n + s.intervalErrors, 0);
    const p95 = Math.max(...samples.map((s) => s.p95Ms ?? 0));
    return [
      pool,
      requests,
      errors,
      requests > 0 ? `${((errors / requests) * 100).toFixed(1)} %` : '-',
      `${p95.toFixed(1)} ms`,
    ];
  });
  return table(['Pool', 'Requests', 'Errors', 'Error rate', 'Worst p95'], rows);
}

/**
 * Renders a recording as Markdown (for a pull request, a chat message or a ticket): summary,
 * incident report, traffic per pool and weight changes, steps, verdicts with every check's observed
 * value and threshold, and the event timeline. The charts are in the HTML report.
 *
 * @example
 * ```ts
 * const md = renderReportMarkdown(await recorder.stop())
 * await writeFile('report.md', md)
 * ```
 */
export function renderReportMarkdown(recording: RunRecording): string {
  const m = buildModel(recording);
  const s = m.started;
  const f = m.finished;
  const out: string[] = [`# ${txt(m.title)}: ${txt(f?.status ?? 'running')}`, ''];
  out.push(
    table(
      ['Run', 'Environment', 'Version', 'Serving at the end', 'Duration', 'Backup'],
      [
        [
          f?.runId ?? s?.runId,
          s?.environment,
          `${s?.from ?? f?.from ?? 'nothing'} → ${s?.version ?? '-'}`,
          f?.serving,
          formatDuration(f?.durationMs),
          m.backupIds.join(', ') || f?.backupId,
        ],
      ],
    ),
    '',
  );
  if (f?.reason) out.push(`**Why it ended so:** ${txt(f.reason)}`, '');
  if (f?.error)
    out.push(
      `**Error:** \`${String(f.error.code ?? '').replace(/[^A-Z0-9_]/g, '')}\` ${txt(f.error.message)}`,
      '',
    );
  if (m.incident) {
    const i = m.incident;
    out.push(
      '## Incident report',
      '',
      `- **Severity:** ${txt(i.severity)}`,
      `- **Summary:** ${txt(i.summary)}`,
      `- **Reason:** ${txt(i.reason)}`,
      `- **From → to:** ${txt(i.from)} → ${txt(i.to)}`,
      `- **Duration:** ${formatDuration(i.durationMs)}`,
      `- **Backup:** ${txt(i.backupId)}`,
      '- **Actions taken:**',
      ...i.actions.map((a, n) => `  ${n + 1}. ${txt(a)}`),
      '',
    );
  }
  out.push('## Traffic', '', trafficSummary(m), '');
  if (m.weights.length > 0) {
    out.push(
      table(
        ['At', ...m.pools.filter((p) => m.weights.some((w) => p in w.weights)).map((p) => `${p} %`)],
        m.weights.map((w) => [
          formatDuration(w.atMs),
          ...m.pools.filter((p) => m.weights.some((x) => p in x.weights)).map((p) => w.weights[p] ?? 0),
        ]),
      ),
      '',
    );
  }
  out.push('## Steps', '');
  out.push(
    m.steps.length > 0
      ? table(
          ['Phase', '#', 'Action', 'At', 'Took', 'Outcome'],
          m.steps.map((st) => [
            st.phase,
            st.index,
            st.description,
            formatDuration(st.startMs),
            formatDuration(st.durationMs),
            st.outcome,
          ]),
        )
      : 'No action ran.',
    '',
  );
  out.push('## Verdicts', '');
  if (m.analyses.length === 0) out.push('No analysis ran.', '');
  for (const a of m.analyses) {
    const r = a.result;
    out.push(`### ${txt(r.name)} of ${txt(a.version)}: ${txt(r.verdict)}`, '', txt(r.reason), '');
    const rows = r.measurements.flatMap((ms) =>
      ms.checks.length === 0
        ? [[ms.verifier, ms.round, '-', ms.verdict, '-', '-', ms.error?.message ?? 'no check']]
        : ms.checks.map((c) => [
            `${ms.verifier}${ms.dryRun ? ' (dry run)' : ''}`,
            ms.round,
            c.name,
            c.verdict,
            formatValue(c.observed),
            formatValue(c.threshold),
            c.reason,
          ]),
    );
    if (rows.length > 0) {
      out.push(table(['Verifier', 'Round', 'Check', 'Verdict', 'Observed', 'Threshold', 'Why'], rows), '');
    }
  }
  out.push('## Timeline', '', ...m.timeline.map((t) => `- \`${formatDuration(t.atMs)}\` ${txt(t.text)}`), '');
  return out.join('\n');
}
