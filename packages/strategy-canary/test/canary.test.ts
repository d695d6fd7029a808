import { ConfigInvalidError, type StrategyInput } from '@codegraph/release-core';
import { canary } from '@codegraph/strategy-canary';
import { describe, expect, it } from 'vitest';
import { drive, pool } from './helpers/drive.js';

const judge = { verifiers: ['judge'] };
const input = (over: Partial<StrategyInput> = {}): StrategyInput => {
  const stable = pool('v1', 'v1', 100, over.replicas ?? 2);
  return { version: 'v2', stable, state: { pools: [stable] }, replicas: 2, ...over };
};

describe('canary steps', () => {
  it('raises the weight step by step with an analysis after each, then promotes and retires stable', () => {
    const { lines } = drive(canary({ weights: [10, 50], analysis: judge }).deploy(input()));
    expect(lines).toEqual([
      'provision v2=v2x1',
      'route v1:90 v2:10',
      'analyze canary-10 [v2] by judge',
      'route v1:50 v2:50',
      'analyze canary-50 [v2] by judge',
      'provision v2=v2x2',
      'route v2:100',
      'promote v2',
      'retire v1',
    ]);
  });

  it('never routes to a canary before it has the replicas for its share', () => {
    const { lines } = drive(canary({ weights: [10, 60, 100] }).deploy(input({ replicas: 4 })));
    expect(lines).toEqual([
      'provision v2=v2x1',
      'route v1:90 v2:10',
      'provision v2=v2x3',
      'route v1:40 v2:60',
      'provision v2=v2x4',
      'route v1:0 v2:100',
      'route v2:100',
      'promote v2',
      'retire v1',
    ]);
  });

  it('keeps the stable pool at full size for the whole canary', () => {
    const { actions } = drive(
      canary({ stepWeight: 20, maxWeight: 100, analysis: judge }).deploy(input({ replicas: 3 })),
    );
    const touchesStable = actions.filter((a) => a.type === 'provision' && a.pool === 'v1');
    expect(touchesStable).toEqual([]);
    expect(actions.findIndex((a) => a.type === 'retire' && a.pool === 'v1')).toBe(actions.length - 1);
  });

  it('brings a short-handed stable pool back to full size before the canary starts', () => {
    const stable = { ...pool('v1', 'v1', 100, 1) };
    const { lines } = drive(
      canary({ weights: [20] }).deploy(input({ stable, state: { pools: [stable] }, replicas: 3 })),
    );
    expect(lines[0]).toBe('provision v1=v1x3');
  });

  it('runs a baseline of the stable version at the canary weight and size, and judges both', () => {
    const { lines } = drive(canary({ weights: [10, 50], analysis: judge, baseline: true }).deploy(input()));
    expect(lines).toEqual([
      'provision v2=v2x1',
      'provision baseline-v1=v1x1',
      'route v1:80 v2:10 baseline-v1:10',
      'analyze canary-10 [v2,baseline-v1] by judge',
      'route v1:0 v2:50 baseline-v1:50',
      'analyze canary-50 [v2,baseline-v1] by judge',
      'provision v2=v2x2',
      'route v2:100',
      'promote v2',
      'retire baseline-v1',
      'retire v1',
    ]);
  });

  it('sizes the canary by setCanaryScale independently of its weight', () => {
    const steps = [
      { setCanaryScale: { replicas: 3 } },
      { setWeight: 10 },
      { setCanaryScale: { weight: 50 } },
      { setCanaryScale: { matchTrafficWeight: true as const } },
      { setWeight: 30 },
    ];
    const { lines } = drive(canary({ steps }).deploy(input({ replicas: 4 })));
    expect(lines.slice(0, 6)).toEqual([
      'provision v2=v2x3',
      'route v1:90 v2:10',
      'provision v2=v2x2',
      'provision v2=v2x1',
      'provision v2=v2x2',
      'route v1:70 v2:30',
    ]);
  });

  it('waits at a pause for an approval, and skips the remaining steps when told to promote fully', () => {
    const steps = [
      { setWeight: 10 },
      { pause: {} },
      { setWeight: 20 },
      { analysis: judge },
      { setWeight: 40 },
    ];
    const { lines } = drive(canary({ steps }).deploy(input()), { fullAt: 1 });
    expect(lines).toEqual([
      'provision v2=v2x1',
      'route v1:90 v2:10',
      'pause until approved',
      'provision v2=v2x2',
      'route v2:100',
      'promote v2',
      'retire v1',
    ]);
  });

  it('stops at the failed analysis: the engine then runs the undo', () => {
    const { lines, stoppedAt } = drive(canary({ weights: [10, 50], analysis: judge }).deploy(input()), {
      fail: ['canary-10'],
    });
    expect(stoppedAt).toBe('canary-10');
    expect(lines.at(-1)).toBe('analyze canary-10 [v2] by judge');
    expect(lines.some((l) => l.startsWith('promote'))).toBe(false);
  });

  it('releases a first version straight to full size (nothing to compare with)', () => {
    const { lines } = drive(
      canary({ weights: [10], analysis: judge }).deploy(input({ stable: undefined, state: { pools: [] } })),
    );
    expect(lines).toEqual(['provision v2=v2x2', 'route v2:100', 'promote v2']);
  });

  it('plans the same actions every time, so the engine can replay it from its journal', () => {
    const s = canary({ weights: [5, 25, 50], pause: { durationMs: 1000 }, analysis: judge, baseline: true });
    expect(drive(s.deploy(input())).actions).toEqual(drive(s.deploy(input())).actions);
  });
});

describe('canary pool names', () => {
  it('keeps canary, baseline and stable apart when an earlier undo left the baseline serving', () => {
    const stable = pool('baseline-v1', 'v1', 100);
    const { lines } = drive(
      canary({ weights: [10], baseline: true }).deploy(input({ stable, state: { pools: [stable] } })),
    );
    expect(lines.slice(0, 3)).toEqual([
      'provision v2=v2x1',
      'provision baseline2-v1=v1x1',
      'route baseline-v1:80 v2:10 baseline2-v1:10',
    ]);
  });

  it('names the canary apart from a stable pool that already bears the version name', () => {
    const stable = pool('v2', 'v1', 100);
    const { lines } = drive(canary({ weights: [10] }).deploy(input({ stable, state: { pools: [stable] } })));
    expect(lines[0]).toBe('provision canary-v2=v2x1');
  });
});

describe('canary undo', () => {
  it('moves all traffic back to the stable pool at once, then retires the canary and the baseline', () => {
    const state = {
      pools: [pool('v1', 'v1', 60, 2), pool('v2', 'v2', 20, 1), pool('baseline-v1', 'v1', 20, 1)],
    };
    const { lines } = drive(
      canary({ baseline: true, weights: [20] }).undo({ to: 'v1', state, replicas: 2, reason: 'failed' }),
    );
    expect(lines).toEqual(['route v1:100', 'promote v1', 'retire v2', 'retire baseline-v1']);
  });

  it('returns to the stable pool, not the baseline, even when the baseline carries more traffic', () => {
    const state = {
      pools: [pool('baseline-v1', 'v1', 50, 2), pool('v1', 'v1', 0, 2), pool('v2', 'v2', 50, 2)],
    };
    const { lines } = drive(
      canary({ baseline: true, weights: [50] }).undo({ to: 'v1', state, replicas: 2, reason: 'aborted' }),
    );
    expect(lines).toEqual(['route v1:100', 'promote v1', 'retire v2', 'retire baseline-v1']);
  });

  it('restores a missing stable pool to full size before moving traffic to it', () => {
    const state = { pools: [pool('v2', 'v2', 100, 2)] };
    const { lines } = drive(canary().undo({ to: 'v1', state, replicas: 2, reason: 'emergency' }));
    expect(lines).toEqual(['provision v1=v1x2', 'route v1:100', 'promote v1', 'retire v2']);
  });
});

describe('canary options', () => {
  const invalid = (options: unknown, message: RegExp) => {
    let caught: unknown;
    try {
      canary(options as Parameters<typeof canary>[0]);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigInvalidError);
    expect((caught as ConfigInvalidError).code).toBe('CG_CONFIG_INVALID');
    expect((caught as Error).message).toMatch(message);
  };

  it('rejects weights out of 0..100 when the strategy is made', () => {
    invalid({ weights: [10, 101] }, /integer 0\.\.100, got 101/);
    invalid({ weights: [-5] }, /integer 0\.\.100/);
    invalid({ steps: [{ setWeight: 12.5 }] }, /integer 0\.\.100/);
  });

  it('rejects weights that do not increase', () => {
    invalid({ weights: [10, 30, 30] }, /must increase, but 30 follows 30/);
    invalid({ steps: [{ setWeight: 50 }, { analysis: judge }, { setWeight: 20 }] }, /20 follows 50/);
  });

  it('rejects maxWeight below stepWeight', () => {
    invalid({ stepWeight: 30, maxWeight: 20 }, /maxWeight \(20\) must be at least stepWeight \(30\)/);
  });

  it('rejects an analysis step that names no verifier', () => {
    invalid({ steps: [{ setWeight: 10 }, { analysis: { verifiers: [] } }] }, /name at least one verifier/);
    invalid({ weights: [10], analysis: {} }, /name at least one verifier/);
  });

  it('rejects weights above 50 with a baseline, unknown steps and mixed shorthands', () => {
    invalid({ weights: [60], baseline: true }, /up to 50/);
    invalid({ steps: [{ setWeight: 10, pause: {} }] }, /exactly one of/);
    invalid({ steps: [{ rollback: true }] }, /unknown step "rollback"/);
    invalid({ weights: [10], stepWeight: 5 }, /one of steps, weights or stepWeight/);
    invalid({ steps: [{ setCanaryScale: { replicas: 0 } }] }, /setCanaryScale must be one of/);
    invalid(
      { weights: [10], analysis: { verifiers: ['judge'], gate: { count: 0 } } },
      /gate\.count must be an integer >= 1/,
    );
    invalid({ wieghts: [10] }, /unknown option "wieghts"/);
    invalid(
      { weights: [10], analysis: { verifiers: ['judge'], gate: { dryRun: ['prometheus'] } } },
      /does not run: prometheus/,
    );
  });

  it('expands the linear shorthand up to maxWeight, with the defaults 10 to 50', () => {
    const weights = (s: ReturnType<typeof canary>) =>
      s.steps.flatMap((x) => ('setWeight' in x ? [x.setWeight] : []));
    expect(weights(canary())).toEqual([10, 20, 30, 40, 50]);
    expect(weights(canary({ stepWeight: 30, maxWeight: 100 }))).toEqual([30, 60, 90]);
  });
});
