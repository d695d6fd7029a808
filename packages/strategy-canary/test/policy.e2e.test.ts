import path from 'node:path';
import { fileStore, proxyAnalysis, type ReleaseEvent } from '@codegraph/release-core';
import { canary } from '@codegraph/strategy-canary';
import { afterEach, describe, expect, it } from 'vitest';
import { engineOn, localEnv, steadyLoad } from './helpers/env.js';
import { until } from './helpers/scenarios.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// A canary with 20 % errors judged by proxyAnalysis, whose gate holds for an operator on failure.
const gate = {
  count: 20,
  intervalMs: 300,
  initialDelayMs: 300,
  inconclusiveLimit: 20,
  onFail: 'pause' as const,
};

describe('gate policies and measurements in a real canary', () => {
  it("holds a failed gate for an operator (onFail: 'pause'), journals every measurement, and continues on promote", async () => {
    const local = await localEnv({ v2: { FAULT_ERROR_RATE: '0.2' } });
    cleanups.push(local.cleanup);
    const strategy = canary({ weights: [50], analysis: { verifiers: ['proxy-analysis'], gate } });
    const { engine, events } = engineOn(local.target, local.dir, {
      strategy,
      verifiers: [proxyAnalysis({ maxErrorRate: 0.02, maxP95LatencyMs: 1000 })],
    });
    expect((await engine.release({ version: 'v1' })).status).toBe('succeeded');
    const load = steadyLoad(await local.target.endpoint());
    cleanups.push(async () => void (await load.stop()));
    const running = engine.release({ version: 'v2' });
    // The gate fails on the canary's errors, then holds: the run waits for a human instead of undoing.
    await until(
      () => events.some((e) => e.type === 'analysis.finished' && e.result.outcome === 'fail'),
      30_000,
      'the failed gate',
    );
    const held = events.find(
      (e): e is Extract<ReleaseEvent, { type: 'analysis.finished' }> =>
        e.type === 'analysis.finished' && e.result.outcome === 'fail',
    )!;
    expect(held.result).toMatchObject({ verdict: 'fail', outcome: 'fail', pause: true });
    expect(held.result.reason).toMatch(/error_rate\[v2\] fail \(value 0\.\d+, limit <= 0.02, n=\d+\)/);
    const runId = held.runId;
    engine.promote(runId);
    const result = await running;
    // The operator's promote passed the held gate: the canary went on to full traffic (and the
    // verification that follows then judged v2 on its own, as it always does).
    expect(
      events.some(
        (e) => e.type === 'action.started' && e.action.type === 'promote' && e.action.pool === 'v2',
      ),
    ).toBe(true);
    expect(result.analyses.find((a) => a.name === 'canary-50')).toMatchObject({
      verdict: 'pass',
      outcome: 'fail',
    });
    // Every measurement was an event and is in the journal, with the check behind it.
    const measured = events.filter((e) => e.type === 'analysis.measured');
    expect(
      measured.some((e) => e.metric === 'error_rate[v2]' && e.verdict === 'fail' && e.pool === 'v2'),
    ).toBe(true);
    const journal = await fileStore({ dir: path.join(local.dir, 'store') }).read(runId);
    const notes = journal.filter((e) => e.type === 'note' && e.message === 'analysis.measured');
    expect(notes.length).toBe(measured.filter((e) => e.runId === runId).length);
    expect(notes[0]).toMatchObject({ data: { gate: 'canary-50', verifier: 'proxy-analysis' } });
  });
});
