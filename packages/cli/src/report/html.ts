import type { AnalysisResult } from '@codegraph/release-core';
import { gateCharts } from './gates.js';
import { buildModel, formatDuration, formatValue, type ReportModel } from './model.js';
import { esc, phaseChart, trafficCharts } from './svg.js';
import type { RunRecording } from './types.js';

const css = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f24;margin:24px auto;max-width:980px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border-radius:4px;padding:1px 8px;font-weight:600;color:#fff;background:#57606a}
.succeeded,.pass{background:#1a7f37}.rolled-back,.inconclusive{background:#9a6700}.failed,.fail,.error,.superseded{background:#cf222e}
.meta{color:#57606a}.note{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px;border-radius:4px}
.chart{display:block;margin:10px 0;max-width:100%;height:auto;background:#fff}
.chart-title{font-weight:600;font-size:13px}.tick{font-size:11px;fill:#57606a}.grid{stroke:#eaeef2}.axis{stroke:#57606a}
.empty{fill:#8c959f;font-size:13px}.bar{fill:#0072B2}.bar.failed{fill:#cf222e}.bar.open{fill:#8c959f}
ol.timeline{padding-left:0;list-style:none}ol.timeline li{font-family:ui-monospace,monospace;font-size:12px}
`;

const badge = (text: string | undefined) =>
  `<span class="badge ${esc(text ?? '')}">${esc(text ?? 'running')}</span>`;

function summary(m: ReportModel): string {
  const s = m.started;
  const f = m.finished;
  const rows: Array<[string, string]> = [
    ['Run', esc(f?.runId ?? s?.runId ?? '-')],
    ['Environment', esc(s?.environment ?? '-')],
    ['Version', `${esc(s?.from ?? f?.from ?? 'nothing')} → ${esc(s?.version ?? '-')}`],
    ['Serving at the end', esc(f?.serving ?? '-')],
    ['Started', esc(s?.time ?? '-')],
    ['Duration', esc(formatDuration(f?.durationMs))],
    ['Backup', esc(m.backupIds.join(', ') || f?.backupId || '-')],
  ];
  if (f?.reason) rows.push(['Why it ended so', esc(f.reason)]);
  if (f?.error) rows.push(['Error', `<code>${esc(f.error.code ?? '')}</code> ${esc(f.error.message)}`]);
  return `<table class="summary">${rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('')}</table>`;
}

function incident(m: ReportModel): string {
  const i = m.incident;
  if (!i) return '';
  return `<h2>Incident report</h2>
<table class="incident"><tr><th>Severity</th><td>${esc(i.severity)}</td></tr>
<tr><th>Summary</th><td>${esc(i.summary)}</td></tr><tr><th>Reason</th><td>${esc(i.reason)}</td></tr>
<tr><th>From → to</th><td>${esc(i.from ?? '-')} → ${esc(i.to)}</td></tr>
<tr><th>Duration</th><td>${esc(formatDuration(i.durationMs))}</td></tr><tr><th>Backup</th><td>${esc(i.backupId ?? '-')}</td></tr>
<tr><th>Actions taken</th><td><ol>${i.actions.map((a) => `<li>${esc(a)}</li>`).join('')}</ol></td></tr></table>`;
}

function steps(m: ReportModel): string {
  if (m.steps.length === 0) return '<p class="meta">No action ran.</p>';
  const rows = m.steps.map(
    (s) =>
      `<tr data-step="${esc(s.phase)}/${s.index}"><td>${esc(s.phase)}</td><td class="num">${s.index}</td><td>${esc(s.description)}</td><td class="num">${esc(formatDuration(s.startMs))}</td><td class="num">${esc(formatDuration(s.durationMs))}</td><td>${esc(s.outcome)}</td></tr>`,
  );
  return `<table class="steps"><thead><tr><th>Phase</th><th>#</th><th>Action</th><th>At</th><th>Took</th><th>Outcome</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function analysis(a: { atMs: number; version: string; result: AnalysisResult }): string {
  const r = a.result;
  const rows = r.measurements.flatMap((ms) => {
    if (ms.checks.length === 0) {
      return [
        `<tr><td>${esc(ms.verifier)}</td><td class="num">${ms.round ?? '-'}</td><td>-</td><td>${badge(ms.verdict)}</td><td>-</td><td>-</td><td>${esc(ms.error?.message ?? 'no check')}</td></tr>`,
      ];
    }
    return ms.checks.map(
      (c) =>
        `<tr data-check="${esc(c.name)}"><td>${esc(ms.verifier)}${ms.dryRun ? ' (dry run)' : ''}</td><td class="num">${ms.round ?? '-'}</td><td>${esc(c.name)}</td><td>${badge(c.verdict)}</td><td class="num">${esc(formatValue(c.observed))}</td><td class="num">${esc(formatValue(c.threshold))}</td><td>${esc(c.reason)}</td></tr>`,
    );
  });
  return `<section class="analysis" data-analysis="${esc(r.name)}" data-verdict="${esc(r.verdict)}">
<h3>${esc(r.name)} of ${esc(a.version)} ${badge(r.verdict)} <span class="meta">at ${esc(formatDuration(a.atMs))}</span></h3>
<p>${esc(r.reason)}</p>
<table><thead><tr><th>Verifier</th><th>Round</th><th>Check</th><th>Verdict</th><th>Observed</th><th>Threshold</th><th>Why</th></tr></thead><tbody>${rows.join('')}</tbody></table></section>`;
}

/**
 * Renders a recording as one self-contained HTML page: no script, no external resource, charts as
 * inline SVG. Sections: summary, incident report, charts (p95 latency, error rate and traffic
 * weight per pool; phases over time), steps, verdicts with every check's observed value and
 * threshold, and the event timeline. Every text is escaped.
 *
 * @example
 * ```ts
 * import { writeFile } from 'node:fs/promises'
 * await writeFile('report.html', renderReportHtml(await recorder.stop()))
 * ```
 */
export function renderReportHtml(recording: RunRecording): string {
  const m = buildModel(recording);
  const status = m.finished?.status;
  const notes = m.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${esc(m.title)}: ${esc(status ?? 'running')}</title>
<style>${css}</style></head>
<body data-run="${esc(m.finished?.runId ?? m.started?.runId ?? '')}" data-status="${esc(status ?? 'running')}">
<h1>${esc(m.title)} ${badge(status)}</h1>
<p class="meta">CodeGraph release report, recorded ${esc(recording.recordingStartedAt)}</p>
${summary(m)}
${incident(m)}
<h2>Charts</h2>
${notes}
${trafficCharts(m).join('\n')}
${gateCharts(m).join('\n')}
${m.phases.length > 0 ? phaseChart(m) : ''}
<h2>Steps</h2>
${steps(m)}
<h2>Verdicts</h2>
${m.analyses.length > 0 ? m.analyses.map(analysis).join('\n') : '<p class="meta">No analysis ran.</p>'}
<h2>Timeline</h2>
<ol class="timeline">${m.timeline.map((t) => `<li>${esc(formatDuration(t.atMs).padStart(8))} ${esc(t.text)}</li>`).join('')}</ol>
</body></html>
`;
}
