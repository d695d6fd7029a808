import {
  type Action,
  type ActionOutcome,
  type AnalysisResult,
  describeAction,
  formatWeights,
  type IncidentReport,
  type Phase,
  type ReleaseEvent,
  type RunFinishedEvent,
  type RunStartedEvent,
  type Weights,
} from '@codegraph/release-core';

import type { RunRecording, TrafficSample } from './types.js';

/** One phase on the timeline, in milliseconds since the run started. */
export interface PhaseSpan {
  phase: Phase;
  startMs: number;
  endMs: number | undefined;
  ok: boolean | undefined;
  error: string | undefined;
}

/** One action the engine took. */
export interface StepRow {
  phase: Phase;
  index: number;
  description: string;
  startMs: number;
  durationMs: number | undefined;
  outcome: string;
}

/** What the renderers draw: the recording, digested. Internal to the report module. */
export interface ReportModel {
  title: string;
  started: RunStartedEvent | undefined;
  finished: RunFinishedEvent | undefined;
  incident: IncidentReport | undefined;
  /** Epoch ms of time 0 on every axis: the run's start (or the first event). */
  t0: number;
  /** Milliseconds from t0 to the last event or sample. */
  spanMs: number;
  phases: PhaseSpan[];
  steps: StepRow[];
  analyses: Array<{ atMs: number; version: string; result: AnalysisResult }>;
  weights: Array<{ atMs: number; weights: Weights }>;
  /** Every gate measurement (`analysis.measured`) with a numeric value, in order. */
  measured: Array<{
    atMs: number;
    gate: string;
    metric: string;
    pool: string | undefined;
    value: number;
    limit: string | undefined;
    verdict: string;
  }>;
  /** Every pool seen, in order of first appearance: this order picks each pool's colour. */
  pools: string[];
  traffic: TrafficSample[];
  timeline: Array<{ atMs: number; text: string }>;
  backupIds: string[];
  notes: string[];
}

function describeOutcome(a: Action, outcome: ActionOutcome): string {
  const o = outcome as Partial<Record<string, unknown>>;
  switch (a.type) {
    case 'provision':
      return `${String(o['ready'] ?? '?')}/${String(o['replicas'] ?? a.replicas)} ready`;
    case 'analyze':
      return `${String(o['verdict'] ?? '?')}: ${String(o['reason'] ?? '')}`;
    case 'pause':
      return `resumed by ${String(o['resumedBy'] ?? '?')}`;
    case 'promote':
      return `stable is ${String(o['version'] || a.pool)}`;
    case 'route':
      return 'applied';
    case 'retire':
      return 'stopped';
  }
}

/** `1.5 s`, `320 ms`, `2 min 5 s` */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

function eventLine(e: ReleaseEvent): string | undefined {
  switch (e.type) {
    case 'run.started':
      return `${e.kind} ${e.version} started${e.from ? ` (from ${e.from})` : ''}${e.resumed ? ', resumed' : ''}`;
    case 'phase.started':
      return `phase ${e.phase} started`;
    case 'phase.finished':
      return `phase ${e.phase} ${e.ok ? 'finished' : 'FAILED'} in ${formatDuration(e.durationMs)}${e.error ? `: ${e.error.message}` : ''}`;
    case 'action.started':
      return undefined; // the step table holds them; the timeline shows what they led to
    case 'action.finished':
      return `${e.phase} action ${e.index}: ${describeAction(e.action)} (${formatDuration(e.durationMs)})`;
    case 'traffic.shifted':
      return `traffic ${formatWeights(e.weights)}`;
    case 'analysis.finished':
      return `analysis ${e.result.name} of ${e.version}: ${e.result.verdict} (${e.result.reason})`;
    case 'backup.created':
      return `backup ${e.backupId} created by ${e.provider}`;
    case 'backup.failed':
      return `backup by ${e.provider} FAILED: ${e.error.message}`;
    case 'notification.failed':
      return `notifier ${e.notifier} could not deliver ${e.eventType}: ${e.error.message}`;
    case 'plugin.abandoned':
      return `${e.pluginKind} ${e.plugin}: ${e.method} abandoned after ${e.afterMs} ms (${e.reason})`;
    case 'run.finished':
      return `${e.status}: serving ${e.serving ?? 'nothing'}${e.reason ? ` (${e.reason})` : ''}`;
  }
}

/** Digests a recording into what both renderers draw. */
export function buildModel(recording: RunRecording): ReportModel {
  const events = recording.events;
  const started = events.find((e): e is RunStartedEvent => e.type === 'run.started');
  const finished = events.findLast((e): e is RunFinishedEvent => e.type === 'run.finished');
  const firstTime = started?.time ?? events[0]?.time ?? recording.recordingStartedAt;
  const t0 = Date.parse(firstTime);
  const rel = (iso: string) => Math.max(0, Date.parse(iso) - t0);

  const phases: PhaseSpan[] = [];
  const steps: StepRow[] = [];
  const analyses: ReportModel['analyses'] = [];
  const weights: ReportModel['weights'] = [];
  const measured: ReportModel['measured'] = [];
  const pools: string[] = [];
  const timeline: ReportModel['timeline'] = [];
  const backupIds: string[] = [];
  const addPool = (p: string) => {
    if (!pools.includes(p)) pools.push(p);
  };
  // A recording may come from a file: only numeric weights 0..100 are taken.
  const initial = Object.entries(recording.initialWeights ?? {}).filter(
    ([, w]) => typeof w === 'number' && w >= 0 && w <= 100,
  );
  if (initial.length > 0) {
    weights.push({ atMs: 0, weights: Object.fromEntries(initial) });
    for (const [p] of initial) addPool(p);
  }

  for (const e of events) {
    const atMs = rel(e.time);
    const line = eventLine(e);
    if (line) timeline.push({ atMs, text: line });
    if (e.type === 'phase.started') {
      phases.push({ phase: e.phase, startMs: atMs, endMs: undefined, ok: undefined, error: undefined });
    } else if (e.type === 'phase.finished') {
      const open = phases.findLast((p) => p.phase === e.phase && p.endMs === undefined);
      const span: PhaseSpan = open ?? {
        phase: e.phase,
        startMs: Math.max(0, atMs - e.durationMs),
        endMs: undefined,
        ok: undefined,
        error: undefined,
      };
      span.endMs = atMs;
      span.ok = e.ok;
      span.error = e.error?.message;
      if (!open) phases.push(span);
    } else if (e.type === 'action.started') {
      steps.push({
        phase: e.phase,
        index: e.index,
        description: describeAction(e.action),
        startMs: atMs,
        durationMs: undefined,
        outcome: 'did not finish',
      });
    } else if (e.type === 'action.finished') {
      const row = steps.findLast(
        (s) => s.phase === e.phase && s.index === e.index && s.durationMs === undefined,
      );
      const outcome = describeOutcome(e.action, e.outcome);
      if (row) {
        row.durationMs = e.durationMs;
        row.outcome = outcome;
      } else {
        steps.push({
          phase: e.phase,
          index: e.index,
          description: describeAction(e.action),
          startMs: atMs - e.durationMs,
          durationMs: e.durationMs,
          outcome,
        });
      }
    } else if (e.type === 'traffic.shifted') {
      weights.push({ atMs, weights: e.weights });
      for (const p of Object.keys(e.weights)) addPool(p);
    } else if (e.type === 'analysis.measured') {
      if (typeof e.value === 'number' && Number.isFinite(e.value))
        measured.push({
          atMs,
          gate: e.gate,
          metric: e.metric,
          pool: e.pool,
          value: e.value,
          limit: e.limit === undefined ? undefined : String(e.limit),
          verdict: e.verdict,
        });
    } else if (e.type === 'analysis.finished') {
      analyses.push({ atMs, version: e.version, result: e.result });
    } else if (e.type === 'backup.created') {
      backupIds.push(e.backupId);
    }
  }
  // Pools that took traffic first (the stable one leads), then pools that never did.
  for (const e of events) {
    if (e.type === 'action.started' && e.action.type === 'provision') addPool(e.action.pool);
  }
  for (const s of recording.traffic) addPool(s.pool);

  const lastEvent = events.at(-1);
  const lastSample = recording.traffic.at(-1);
  const spanMs = Math.max(
    1,
    lastEvent ? rel(lastEvent.time) : 0,
    lastSample ? rel(lastSample.at) : 0,
    finished ? finished.durationMs : 0,
  );
  const title = started
    ? `${started.kind} ${started.version} in ${started.environment}`
    : `run ${recording.runId ?? '(none)'}`;
  return {
    title,
    started,
    finished,
    incident: finished?.incident,
    t0,
    spanMs,
    phases,
    steps,
    analyses,
    weights,
    measured,
    pools,
    traffic: recording.traffic.filter((s) => Date.parse(s.at) >= t0),
    timeline,
    backupIds,
    notes: recording.notes,
  };
}

/** Renders a check's observed or threshold value. */
export function formatValue(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(3).replace(/0+$/, '');
  return String(v);
}
