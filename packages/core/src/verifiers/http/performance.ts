import type { Check } from '../../analysis/types.js';
import { summarizeLatency } from '../utils/stats.js';
import { thresholdCheck } from '../utils/verdict.js';
import { call, headersFor, type Suite } from './checks.js';
import { loadTest } from './load.js';

/** `latency.p50`, `latency.p95`, `latency.p99` of sequential requests against `maxResponseTimeMs`. */
export async function latencyChecks(s: Suite): Promise<Check[]> {
  const samples: number[] = [];
  let failed = 0;
  for (let i = 0; i < s.o.latencySamples; i++) {
    const t0 = performance.now();
    try {
      const a = await call(s, s.o.loadPath);
      if (a.status >= 400) failed++;
    } catch (err) {
      if (s.o.signal?.aborted) throw err;
      failed++;
    }
    samples.push(performance.now() - t0);
  }
  const l = summarizeLatency(samples);
  const context = `${samples.length} requests to ${s.o.loadPath}${failed ? `, ${failed} failed` : ''}`;
  const query = `GET ${s.o.loadPath} x${s.o.latencySamples}`;
  return (['p50', 'p95', 'p99'] as const).map((p) =>
    thresholdCheck(`latency.${p}`, l[p], { max: s.o.maxResponseTimeMs }, { unit: ' ms', query, context }),
  );
}

/** `concurrency.errors` and `concurrency.throughput_rps` of the concurrent-load step. */
export async function concurrencyChecks(s: Suite): Promise<Check[]> {
  const r = await loadTest({
    url: `${s.o.baseUrl}${s.o.loadPath}`,
    connections: s.o.concurrentRequests,
    requests: s.o.loadRequests,
    headers: headersFor(s),
    requestTimeoutMs: s.o.requestTimeoutMs,
    ca: s.o.ca,
    signal: s.o.signal,
  });
  const query = `GET ${s.o.loadPath} x${s.o.loadRequests} with ${s.o.concurrentRequests} in flight`;
  const bad = Object.entries(r.statuses)
    .filter(([k]) => k === 'network' || Number(k) >= 400)
    .map(([k, n]) => `${n}x ${k}`)
    .join(', ');
  return [
    {
      name: 'concurrency.errors',
      verdict: r.errors === 0 ? 'pass' : 'fail',
      observed: r.errors,
      threshold: 0,
      query,
      reason:
        r.errors === 0
          ? `${r.requests} requests, no errors`
          : `${r.errors} of ${r.requests} failed (${bad})${r.firstError ? `: ${r.firstError}` : ''}`,
    },
    thresholdCheck(
      'concurrency.throughput_rps',
      r.requests > 0 ? r.rps : null,
      { min: s.o.minThroughputRps },
      {
        unit: ' rps',
        query,
        context: `p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms under load`,
      },
    ),
  ];
}
