import type { ReportModel } from './model.js';
import { type ChartMarker, type ChartSeries, lineChart, poolColor } from './svg.js';

/** The first numeric bound in a check's limit text (`<= 0.02`, `>= 500 rps`, `difference <= 0.005 or ...`). */
export function limitOf(text: string | undefined): { value: number; label: string } | undefined {
  const m = text === undefined ? null : /([<>]=?)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)/.exec(text);
  if (!m) return undefined;
  const value = Number(m[2]);
  return Number.isFinite(value) && value >= 0 ? { value, label: `limit ${m[1]} ${m[2]}` } : undefined;
}

/**
 * One chart per measured check (pools on the same chart): the gate's own measurements as they were
 * taken, with the check's limit as a threshold line and failed measurements marked.
 */
export function gateCharts(model: ReportModel): string[] {
  const byMetric = new Map<string, ReportModel['measured']>();
  for (const m of model.measured) {
    const base = m.pool ? m.metric.replace(`[${m.pool}]`, '') : m.metric;
    const key = `${m.gate} · ${base}`;
    const list = byMetric.get(key) ?? [];
    list.push(m);
    byMetric.set(key, list);
  }
  const charts: string[] = [];
  let i = 0;
  for (const [key, list] of byMetric) {
    const series = new Map<string, ChartSeries>();
    for (const m of list) {
      const name = m.pool ?? m.metric;
      const s = series.get(name) ?? {
        name,
        color: m.pool ? poolColor(model, m.pool) : '#0072B2',
        points: [],
      };
      s.points.push([m.atMs, Math.max(0, m.value)]);
      series.set(name, s);
    }
    const limit = limitOf(list.find((m) => m.limit !== undefined)?.limit);
    const markers: ChartMarker[] = list
      .filter((m) => m.verdict === 'fail')
      .slice(0, 1)
      .map((m) => ({ atMs: m.atMs, label: `${m.metric} failed`, color: '#D55E00' }));
    charts.push(
      lineChart({
        id: `gate-${i++}`,
        title: `Gate ${key}`,
        unit: '',
        spanMs: model.spanMs,
        series: [...series.values()],
        markers,
        ...(limit ? { thresholds: [limit] } : {}),
        empty: 'no numeric measurement',
      }),
    );
  }
  return charts;
}
