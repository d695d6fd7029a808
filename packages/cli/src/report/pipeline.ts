import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import type { HistoryEntry, JournalEntry, Pipeline, PipelineStatus, Store } from '@codegraph/release-core';

/** Everything the pipeline page shows: the status, the run's journal and each stage's run. */
export interface PipelineReportInput {
  status: PipelineStatus;
  /** The pipeline run's journal (empty when the pipeline never ran). */
  journal: JournalEntry[];
  /** Each stage's engine run for this pipeline run, by stage name, from the stage's history. */
  stageRuns: Record<string, HistoryEntry | undefined>;
}

/**
 * Gathers a pipeline's report input: its status, the latest run's journal, and each stage's history
 * entry for the runs the pipeline started.
 *
 * @example
 * ```ts
 * const html = renderPipelineReport(await pipelineReportInput(pipeline, store))
 * ```
 */
export async function pipelineReportInput(pipeline: Pipeline, store: Store): Promise<PipelineReportInput> {
  const status = await pipeline.status();
  const journal = status.run ? await store.read(status.run.runId) : [];
  const stageRuns: Record<string, HistoryEntry | undefined> = {};
  for (const stage of pipeline.stages) {
    const runId = status.stages.find((s) => s.stage === stage.name)?.runId;
    if (!runId) continue;
    stageRuns[stage.name] = (await stage.engine.history()).find((h) => h.runId === runId);
  }
  return { status, journal, stageRuns };
}

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const colours: Record<string, string> = {
  succeeded: '#2e7d32',
  'rolled-back': '#ef6c00',
  failed: '#c62828',
  superseded: '#6d4c41',
  running: '#1565c0',
  waiting: '#9e9d24',
  pending: '#9e9e9e',
  skipped: '#bdbdbd',
};

function describe(e: JournalEntry): string | undefined {
  const d = (e.type === 'note' ? e.data : undefined) as Record<string, unknown> | undefined;
  if (e.type === 'run') return `pipeline run of ${e.header.version} started`;
  if (e.type === 'note' && e.message === 'waiting') {
    const reasons = (d?.waitingFor as Array<{ detail: string }> | undefined) ?? [];
    return `${d?.stage} waits: ${reasons.map((r) => r.detail).join('; ')}`;
  }
  if (e.type === 'note' && e.message === 'approval') return `${d?.by} approved ${d?.stage}`;
  if (e.type === 'note' && e.message === 'approval-refused')
    return `approval by ${d?.by} refused: ${d?.reason}`;
  if (e.type === 'note' && e.message === 'stage-run') return `${d?.stage} engine run ${d?.runId}`;
  if (e.type === 'note' && e.message === 'abort') return `aborted by ${d?.by ?? 'a control request'}`;
  if (e.type === 'step-started') return `${e.key.slice(6)} started`;
  if (e.type === 'step-finished') return `${e.key.slice(6)} ${(e.result as { status?: string }).status}`;
  if (e.type === 'step-failed') return `${e.key.slice(6)} failed: ${e.error.message}`;
  if (e.type === 'finished') return `pipeline ${e.status}${e.reason ? `: ${e.reason}` : ''}`;
  return undefined;
}

/** Per stage: when it began waiting, started and finished (journal times, real time). */
function spans(journal: JournalEntry[]) {
  const out = new Map<string, { wait?: number; start?: number; end?: number; status?: string }>();
  const at = (s: string) => out.get(s) ?? out.set(s, {}).get(s)!;
  for (const e of journal) {
    const t = Date.parse(e.time);
    if (e.type === 'note' && e.message === 'waiting') {
      const s = at(String((e.data as { stage?: string }).stage));
      s.wait ??= t;
    } else if (e.type === 'step-started' && e.key.startsWith('stage/')) at(e.key.slice(6)).start = t;
    else if (e.type === 'step-finished' && e.key.startsWith('stage/')) {
      const s = at(e.key.slice(6));
      s.end = t;
      s.status = (e.result as { status?: string }).status;
    }
  }
  return out;
}

function timeline(input: PipelineReportInput): string {
  const times = input.journal.map((e) => Date.parse(e.time));
  if (times.length === 0) return '';
  const t0 = Math.min(...times);
  const t1 = Math.max(...times, t0 + 1);
  const width = 760;
  const x = (t: number) => 150 + ((t - t0) / (t1 - t0)) * (width - 160);
  const rows = input.status.stages.map((stage, i) => {
    const s = spans(input.journal).get(stage.stage) ?? {};
    const y = 20 + i * 30;
    const bars: string[] = [];
    if (s.wait !== undefined) {
      const end = s.start ?? t1;
      bars.push(
        `<rect x="${x(s.wait)}" y="${y}" width="${Math.max(2, x(end) - x(s.wait))}" height="18" fill="${colours.waiting}"><title>waiting</title></rect>`,
      );
    }
    if (s.start !== undefined) {
      const colour = colours[s.status ?? 'running'] ?? colours.running;
      bars.push(
        `<rect x="${x(s.start)}" y="${y}" width="${Math.max(2, x(s.end ?? t1) - x(s.start))}" height="18" fill="${colour}"><title>${esc(s.status ?? 'running')}</title></rect>`,
      );
    }
    return `<text x="4" y="${y + 14}">${esc(stage.stage)}</text>${bars.join('')}`;
  });
  const height = 30 + input.status.stages.length * 30;
  return `<svg role="img" aria-label="stage timeline" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">
${rows.join('\n')}
<text x="150" y="${height - 2}">${esc(new Date(t0).toISOString())}</text><text x="${width - 4}" y="${height - 2}" text-anchor="end">${esc(new Date(t1).toISOString())}</text>
</svg>`;
}

/**
 * One self-contained HTML page for a whole pipeline: the run, every stage (serving version, state, its
 * engine run and verdicts, what it waits for, approvals with identities), a timeline, and the journal.
 *
 * @example
 * ```ts
 * await fs.writeFile('pipeline.html', renderPipelineReport(await pipelineReportInput(pipeline, store)))
 * ```
 */
export function renderPipelineReport(input: PipelineReportInput): string {
  const { status } = input;
  const run = status.run;
  const badge = (s: string) =>
    `<span class="badge" style="background:${colours[s] ?? '#607d8b'}">${esc(s)}</span>`;
  const cards = status.stages.map((s) => {
    const h = input.stageRuns[s.stage];
    const verdicts = h
      ? Object.entries(h.verdicts)
          .map(([k, v]) => `${esc(k)}: ${esc(v)}`)
          .join(', ')
      : '';
    return `<section class="stage"><h2>${esc(s.stage)} ${badge(s.state)}</h2>
<p>environment <b>${esc(s.environment)}</b>, serving <b>${esc(s.serving ?? 'nothing')}</b>${s.succeededAt ? `, released at ${esc(s.succeededAt)}` : ''}</p>
${s.runId ? `<p>engine run <code>${esc(s.runId)}</code>${h ? `: ${esc(h.status)}${h.backupId ? `, backup ${esc(h.backupId)}` : ''}${verdicts ? `, verdicts ${verdicts}` : ''}` : ''}</p>` : ''}
${s.waitingFor.length ? `<ul class="wait">${s.waitingFor.map((w) => `<li>${esc(w.gate)}: ${esc(w.detail)}${w.until ? ` (until ${esc(w.until)})` : ''}</li>`).join('')}</ul>` : ''}
${s.approvals.length ? `<p>approvals: ${s.approvals.map((a) => `${esc(a.by)} at ${esc(a.at)}`).join(', ')}</p>` : ''}
</section>`;
  });
  const rows = input.journal
    .map((e) => [e.time, describe(e)] as const)
    .filter((r): r is readonly [string, string] => r[1] !== undefined)
    .map(([t, what]) => `<tr><td>${esc(t)}</td><td>${esc(what)}</td></tr>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pipeline ${esc(status.pipeline)}${run ? ` ${esc(run.version)}` : ''}</title>
<style>body{font-family:sans-serif;max-width:860px;margin:2em auto;color:#222}.badge{color:#fff;border-radius:4px;padding:1px 6px;font-size:.8em}
.stage{border:1px solid #ddd;border-radius:6px;padding:.5em 1em;margin:1em 0}table{border-collapse:collapse;width:100%}td{border-top:1px solid #eee;padding:2px 6px;font-size:.9em}</style></head>
<body><h1>Pipeline ${esc(status.pipeline)}</h1>
${run ? `<p>version <b>${esc(run.version)}</b> ${badge(run.status ?? run.state)} run <code>${esc(run.runId)}</code>, started ${esc(run.startedAt)}${run.reason ? ` — ${esc(run.reason)}` : ''}</p>` : '<p>no pipeline run yet</p>'}
<p>as of ${esc(status.at)}</p>
${timeline(input)}
${cards.join('\n')}
<h2>Journal</h2><table>${rows.join('\n')}</table>
</body></html>
`;
}

/** Writes the pipeline page to `file` (directories created). Returns the path. */
export async function writePipelineReport(file: string, input: PipelineReportInput): Promise<string> {
  await fs.mkdir(dirname(file), { recursive: true });
  await fs.writeFile(file, renderPipelineReport(input));
  return file;
}
