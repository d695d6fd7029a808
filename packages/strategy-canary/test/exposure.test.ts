import { ConfigInvalidError } from '@codegraph/release-core';
import { canary, canaryExposure } from '@codegraph/strategy-canary';
import { describe, expect, it } from 'vitest';
import { drive, pool } from './helpers/drive.js';

const gate = { count: 5, intervalMs: 2000, initialDelayMs: 2000 };

describe('canary exposure', () => {
  it('catches a canary that is bad from its first request at the first gate', () => {
    const e = canaryExposure({ weights: [5, 25, 50], analysis: { verifiers: ['judge'], gate } });
    expect(e.stages.map((s) => [s.weight, s.detectMs, s.caughtBy])).toEqual([
      [5, 2000, 'canary-5'],
      [25, 2000, 'canary-25'],
      [50, 2000, 'canary-50'],
    ]);
    expect(e.detectMs).toBe(2000);
    expect(e.exposedWeight).toBe(50);
    expect(e.exposedShare).toBe(0.5);
  });

  it('adds the failures a gate tolerates, each one interval apart', () => {
    const e = canaryExposure({
      weights: [10],
      analysis: { verifiers: ['judge'], gate: { ...gate, failureLimit: 2 } },
    });
    expect(e.detectMs).toBe(2000 + 2 * 2000);
  });

  it('stops at count when the gate ends before its failure limit', () => {
    const e = canaryExposure({
      weights: [10],
      analysis: { verifiers: ['judge'], gate: { count: 2, intervalMs: 1000, failureLimit: 9 } },
    });
    expect(e.detectMs).toBe(1000);
  });

  it('counts timed pauses, raised weights before the next analysis, and measurement time', () => {
    const steps = [
      { setWeight: 10 },
      { pause: { durationMs: 10_000 } },
      { setWeight: 30 },
      { pause: { durationMs: 10_000 } },
      { analysis: { verifiers: ['judge'], gate: { initialDelayMs: 0 } } },
    ];
    const e = canaryExposure({ steps }, { measurementMs: 500 });
    const first = e.stages[0]!;
    expect(first.detectMs).toBe(20_500);
    expect(first.exposedWeight).toBe(30);
    // (10 % × 10 s + 30 % × 10.5 s) / 20.5 s
    expect(first.exposedShare).toBeCloseTo((10 * 10_000 + 30 * 10_500) / 20_500 / 100, 10);
    expect(e.stages[1]).toMatchObject({ weight: 30, detectMs: 10_500, exposedWeight: 30, exposedShare: 0.3 });
  });

  it('reports a canary that an approval pause or a promotion without analysis lets through as never caught', () => {
    const waits = canaryExposure({
      steps: [{ setWeight: 10 }, { pause: {} }, { analysis: { verifiers: ['judge'] } }],
    });
    expect(waits.detectMs).toBe(Number.POSITIVE_INFINITY);
    expect(waits.stages[0]!.caughtBy).toBe('approval');
    const blind = canaryExposure({
      weights: [10, 50],
      analysis: { verifiers: ['judge'], gate: { dryRun: ['judge'] } },
    });
    expect(blind.stages[0]).toMatchObject({ caughtBy: 'none', exposedWeight: 100, exposedShare: 1 });
  });

  it('is what the strategy reports about itself, and rejects bad options like the strategy does', () => {
    const o = { stepWeight: 20, maxWeight: 60, analysis: { verifiers: ['judge'], gate } };
    expect(canary(o).exposure).toEqual(canaryExposure(o));
    expect(() => canaryExposure({ stepWeight: 20, maxWeight: 10 })).toThrow(ConfigInvalidError);
  });

  it('reads the same figures off the actions of a dry run', () => {
    const o = {
      weights: [5, 25, 50],
      baseline: true,
      pause: { durationMs: 3000 },
      analysis: { verifiers: ['judge'], gate },
    };
    const stable = pool('v1', 'v1', 100);
    const { actions } = drive(
      canary(o).deploy({ version: 'v2', stable, state: { pools: [stable] }, replicas: 2 }),
    );
    const fromPlan = canaryExposure({ version: 'v2', actions });
    expect(fromPlan.detectMs).toBe(5000);
    expect({ ...fromPlan, stages: fromPlan.stages.map((s) => s.detectMs) }).toEqual({
      ...canaryExposure(o),
      stages: canaryExposure(o).stages.map((s) => s.detectMs),
    });
  });
});
