import { formatDuration, type ReportModel } from './model.js';

/** One line on a chart: a pool's values over time (ms since the run started). */
export interface ChartSeries {
  name: string;
  color: string;
  points: Array<[number, number]>;
  /** Draw as a step function (values hold until the next point), e.g. traffic weights. */
  step?: boolean;
}

/** A vertical marker on a chart: an analysis verdict, the start of the undo. */
export interface ChartMarker {
  atMs: number;
  label: string;
  color: string;
}

/** Colour-blind-friendly palette (Okabe–Ito); a pool keeps its colour across every chart. */
const palette = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];

export function poolColor(model: ReportModel, pool: string): string {
  const i = model.pools.indexOf(pool);
  return palette[(i < 0 ? model.pools.length : i) % palette.length]!;
}

/** Escapes text for HTML and SVG content and attributes. */
export function esc(text: unknown): string {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const W = 760;
const H = 240;
const M = { left: 56, right: 16, top: 28, bottom: 34 };
const plotW = W - M.left - M.right;
const plotH = H - M.top - M.bottom;

/** A round axis maximum and tick step above `max`. */
function niceScale(max: number): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  return { top: step * Math.ceil(max / step), step };
}

const fmt = (n: number) => (Math.abs(n) >= 10 || Number.isInteger(n) ? String(Math.round(n)) : n.toFixed(2));

/**
 * A line chart as a self-contained `<svg>`: axes, ticks, a legend, one `<path data-series>` per
 * series and a `<title>` per point (hover shows the value). `yMax` fixes the axis (e.g. 100 %).
 */
export function lineChart(opts: {
  id: string;
  title: string;
  unit: string;
  spanMs: number;
  series: ChartSeries[];
  markers?: ChartMarker[];
  yMax?: number;
  /** Horizontal threshold lines (a gate's limits). */
  thresholds?: Array<{ value: number; label: string }>;
  /** Shown in the plot when no series has a point. */
  empty: string;
}): string {
  const { spanMs, series } = opts;
  const maxY = Math.max(
    0,
    ...series.flatMap((s) => s.points.map((p) => p[1])),
    ...(opts.thresholds ?? []).map((t) => t.value * 1.1),
  );
  const { top, step } = opts.yMax !== undefined ? { top: opts.yMax, step: opts.yMax / 4 } : niceScale(maxY);
  const x = (ms: number) => M.left + (Math.min(ms, spanMs) / spanMs) * plotW;
  const y = (v: number) => M.top + plotH - (Math.min(v, top) / top) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="${esc(opts.id)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(opts.title)}">`,
    `<title>${esc(opts.title)}</title>`,
    `<text x="${M.left}" y="16" class="chart-title">${esc(opts.title)}</text>`,
  );
  // Grid and axes.
  for (let v = 0; v <= top + step / 1000; v += step) {
    out.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/>`,
      `<text x="${M.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" class="tick">${fmt(v)}${esc(opts.unit)}</text>`,
    );
  }
  const xTicks = 6;
  for (let i = 0; i <= xTicks; i++) {
    const ms = (spanMs * i) / xTicks;
    out.push(
      `<text x="${x(ms).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle" class="tick">${esc(formatDuration(ms))}</text>`,
    );
  }
  out.push(
    `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + plotH}" class="axis"/>`,
    `<line x1="${M.left}" x2="${W - M.right}" y1="${M.top + plotH}" y2="${M.top + plotH}" class="axis"/>`,
  );
  for (const m of opts.markers ?? []) {
    out.push(
      `<g class="marker" data-marker="${esc(m.label)}"><line x1="${x(m.atMs).toFixed(1)}" x2="${x(m.atMs).toFixed(1)}" y1="${M.top}" y2="${M.top + plotH}" stroke="${m.color}" stroke-dasharray="4 3"/><title>${esc(m.label)} at ${esc(formatDuration(m.atMs))}</title></g>`,
    );
  }
  for (const t of opts.thresholds ?? []) {
    out.push(
      `<g class="threshold" data-threshold="${esc(t.label)}"><line x1="${M.left}" x2="${W - M.right}" y1="${y(t.value).toFixed(1)}" y2="${y(t.value).toFixed(1)}" stroke="#D55E00" stroke-dasharray="6 4"/><text x="${W - M.right - 4}" y="${(y(t.value) - 4).toFixed(1)}" text-anchor="end" class="tick">${esc(t.label)}</text></g>`,
    );
  }
  const drawn = series.filter((s) => s.points.length > 0);
  if (drawn.length === 0) {
    out.push(
      `<text x="${M.left + plotW / 2}" y="${M.top + plotH / 2}" text-anchor="middle" class="empty">${esc(opts.empty)}</text>`,
    );
  }
  for (const s of drawn) {
    const pts = s.points.map(([ms, v]) => [x(ms), y(v)] as const);
    let d = '';
    pts.forEach(([px, py], i) => {
      if (i === 0) d += `M${px.toFixed(1)},${py.toFixed(1)}`;
      else if (s.step) d += `H${px.toFixed(1)}V${py.toFixed(1)}`;
      else d += `L${px.toFixed(1)},${py.toFixed(1)}`;
    });
    if (s.step) d += `H${x(spanMs).toFixed(1)}`;
    out.push(
      `<g class="series" data-series="${esc(s.name)}"><path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`,
      ...s.points.map(
        ([ms, v], i) =>
          `<circle cx="${pts[i]![0].toFixed(1)}" cy="${pts[i]![1].toFixed(1)}" r="2.5" fill="${s.color}"><title>${esc(s.name)} ${fmt(v)}${esc(opts.unit)} at ${esc(formatDuration(ms))}</title></circle>`,
      ),
      '</g>',
    );
  }
  // Legend, right-aligned above the plot.
  let lx = W - M.right;
  for (const s of [...series].reverse()) {
    const wText = 8 + s.name.length * 7;
    lx -= wText + 16;
    out.push(
      `<g class="legend"><rect x="${lx}" y="8" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="17" class="tick">${esc(s.name)}</text></g>`,
    );
  }
  out.push('</svg>');
  return out.join('\n');
}

/** A Gantt chart of the run's phases: one row per phase run, red when it failed. */
export function phaseChart(model: ReportModel): string {
  const rowH = 22;
  const h = M.top + model.phases.length * rowH + 30;
  const x = (ms: number) => M.left + 40 + (Math.min(ms, model.spanMs) / model.spanMs) * (plotW - 40);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="timeline" viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-label="Phases over time">`,
    '<title>Phases over time</title>',
    `<text x="${M.left}" y="16" class="chart-title">Phases over time</text>`,
  ];
  model.phases.forEach((p, i) => {
    const y0 = M.top + i * rowH;
    const end = p.endMs ?? model.spanMs;
    const cls = p.ok === false ? 'bar failed' : p.ok === undefined ? 'bar open' : 'bar';
    out.push(
      `<g data-phase="${esc(p.phase)}"><text x="${M.left + 34}" y="${y0 + 15}" text-anchor="end" class="tick">${esc(p.phase)}</text>`,
      `<rect x="${x(p.startMs).toFixed(1)}" y="${y0 + 3}" width="${Math.max(2, x(end) - x(p.startMs)).toFixed(1)}" height="${rowH - 6}" class="${cls}"><title>${esc(p.phase)}: ${esc(formatDuration(end - p.startMs))}${p.error ? ` — ${esc(p.error)}` : ''}</title></rect></g>`,
    );
  });
  const yAxis = M.top + model.phases.length * rowH + 14;
  for (let i = 0; i <= 6; i++) {
    const ms = (model.spanMs * i) / 6;
    out.push(
      `<text x="${x(ms).toFixed(1)}" y="${yAxis}" text-anchor="middle" class="tick">${esc(formatDuration(ms))}</text>`,
    );
  }
  out.push('</svg>');
  return out.join('\n');
}

/** The three charts of a report: p95 latency and error rate per pool, traffic weight per pool. */
export function trafficCharts(model: ReportModel): string[] {
  const rel = (iso: string) => Date.parse(iso) - model.t0;
  const markers: ChartMarker[] = [
    ...model.analyses
      .filter((a) => a.result.verdict !== 'pass')
      .map((a) => ({
        atMs: a.atMs,
        label: `analysis ${a.result.name}: ${a.result.verdict}`,
        color: '#D55E00',
      })),
    ...model.phases
      .filter((p) => p.phase === 'undo')
      .map((p) => ({ atMs: p.startMs, label: 'undo started', color: '#CC79A7' })),
  ];
  const sampled = model.pools.filter((pool) => model.traffic.some((s) => s.pool === pool));
  const bySample = (pick: (s: (typeof model.traffic)[number]) => number | null) =>
    sampled.map((pool) => ({
      name: pool,
      color: poolColor(model, pool),
      points: model.traffic
        .filter((s) => s.pool === pool)
        .flatMap((s): Array<[number, number]> => {
          const v = pick(s);
          return v === null ? [] : [[rel(s.at), v]];
        }),
    }));
  const noTraffic = model.notes[0] ?? 'no traffic was sampled';
  const weightSeries: ChartSeries[] = model.pools
    .filter((pool) => model.weights.some((w) => pool in w.weights))
    .map((pool) => ({
      name: pool,
      color: poolColor(model, pool),
      step: true,
      points: model.weights.map((w): [number, number] => [w.atMs, w.weights[pool] ?? 0]),
    }));
  return [
    lineChart({
      id: 'latency',
      title: 'p95 latency per pool',
      unit: ' ms',
      spanMs: model.spanMs,
      series: bySample((s) => s.p95Ms),
      markers,
      empty: noTraffic,
    }),
    lineChart({
      id: 'error-rate',
      title: 'Error rate per pool',
      unit: ' %',
      spanMs: model.spanMs,
      series: bySample((s) => (s.errorRate === null ? null : s.errorRate * 100)),
      markers,
      yMax: 100,
      empty: noTraffic,
    }),
    lineChart({
      id: 'traffic-weight',
      title: 'Traffic weight per pool',
      unit: ' %',
      spanMs: model.spanMs,
      series: weightSeries,
      markers,
      yMax: 100,
      empty: 'traffic never shifted',
    }),
  ];
}
