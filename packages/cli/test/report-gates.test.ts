import type { ReleaseEvent } from '@codegraph/release-core';
import { describe, expect, it } from 'vitest';
import { type RunRecording, recordingFormat, renderReportHtml } from '../src/report/index.js';

const base = { runId: 'r1', environment: 'production', kind: 'release' as const };
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
const measured = (s: number, pool: string, value: number, verdict: 'pass' | 'fail'): ReleaseEvent => ({
  ...base,
  type: 'analysis.measured',
  time: at(s),
  version: 'v2',
  gate: 'canary-5',
  verifier: 'proxy-analysis',
  round: s,
  metric: `error_rate[${pool}]`,
  pool,
  value,
  limit: '<= 0.02',
  verdict,
  samples: 100 * s,
  reason: 'r',
});

describe('release report charts of the gates', () => {
  it("charts each gate's own measurements with the limit as a threshold line, and the weights from before the release", () => {
    const recording: RunRecording = {
      format: recordingFormat,
      runId: 'r1',
      recordingStartedAt: at(0),
      sampleEveryMs: 500,
      initialWeights: { v1: 100, bogus: 'x' as unknown as number },
      traffic: [],
      notes: [],
      events: [
        { ...base, type: 'run.started', time: at(0), version: 'v2', from: 'v1' },
        { ...base, type: 'traffic.shifted', time: at(2), weights: { v1: 95, v2: 5 } },
        measured(3, 'v2', 0.01, 'pass'),
        measured(4, 'v2', 0.06, 'fail'),
        measured(4, 'v1', 0.0, 'pass'),
      ],
    };
    const html = renderReportHtml(recording);
    const gate = html.slice(html.indexOf('data-chart="gate-0"'));
    expect(gate).toContain('Gate canary-5 · error_rate');
    expect(gate).toMatch(/data-threshold="limit &lt;= 0.02"/);
    expect(gate).toContain('data-series="v2"');
    expect(gate).toContain('data-series="v1"');
    expect(gate).toContain('data-marker="error_rate[v2] failed"');
    // The weight chart starts at time 0 with v1 at 100 %, before the first shift at 2 s.
    const weights = html.slice(html.indexOf('data-chart="traffic-weight"'));
    expect(weights).toContain('v1 100 % at 0 ms');
    expect(html).not.toContain('bogus');
  });
});
