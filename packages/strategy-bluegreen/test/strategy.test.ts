import {
  ConfigInvalidError,
  defineStrategy,
  type Strategy,
  servingPool,
  type TargetState,
} from '@codegraph/release-core';
import { blueGreen, blueGreenDefaults } from '@codegraph/strategy-bluegreen';
import { describe, expect, it } from 'vitest';
import { type Answers, apply, pool, shape, steps } from './model.js';

// The strategy is pure: these tests drive its generators against a model target that keeps the rules
// of a real one (no route to a missing pool, no retire of a pool with traffic), as the engine would.

const blueServesV1: TargetState = { pools: [pool('blue', 'v1', 100)] };

/** What the engine does: deploy, and on a failed analysis the undo back to the stable version. */
function release(strategy: Strategy, state: TargetState, version: string, answers: Answers = {}) {
  const stable = servingPool(state.pools);
  const deployed = apply(state, strategy.deploy({ version, stable, state, replicas: 2 }), answers);
  if (!deployed.failed || !stable) return { deploy: steps(deployed.actions), state: deployed.state };
  const undone = apply(
    deployed.state,
    strategy.undo({ to: stable.version, state: deployed.state, replicas: 2, reason: 'failed' }),
  );
  return { deploy: steps(deployed.actions), undo: steps(undone.actions), state: undone.state };
}

describe('blueGreen: the release plan', () => {
  it('previews v2 in green at full size, analyses it, switches all traffic, keeps blue warm 30 s, then retires blue', () => {
    const r = release(blueGreen(), blueServesV1, 'v2');
    expect(r.deploy).toEqual([
      'provision green=v2x2',
      'analyze pre-promotion green',
      'route green=100',
      'analyze post-promotion green',
      'promote green',
      'pause 30000',
      'retire blue',
    ]);
    expect(shape(r.state)).toEqual([['green', 'v2', 100]]);
  });

  it('alternates colours: the release after green goes to blue', () => {
    const r = release(blueGreen(), { pools: [pool('green', 'v2', 100)] }, 'v3');
    expect(r.deploy[0]).toBe('provision blue=v3x2');
    expect(shape(r.state)).toEqual([['blue', 'v3', 100]]);
  });

  it('makes a first release in blue with nothing to keep warm', () => {
    const r = release(blueGreen(), { pools: [] }, 'v1');
    expect(r.deploy).toEqual([
      'provision blue=v1x2',
      'analyze pre-promotion blue',
      'route blue=100',
      'analyze post-promotion blue',
      'promote blue',
    ]);
  });

  it('uses the scale-down delay asked for, and retires at once with 0', () => {
    expect(release(blueGreen({ scaleDownDelayMs: 5_000 }), blueServesV1, 'v2').deploy).toContain(
      'pause 5000',
    );
    expect(release(blueGreen({ scaleDownDelayMs: 0 }), blueServesV1, 'v2').deploy.slice(-2)).toEqual([
      'promote green',
      'retire blue',
    ]);
  });

  it('passes the verifiers and gate of each analysis to the engine', () => {
    const strategy = blueGreen({
      prePromotionAnalysis: { verifiers: ['http-validation'], gate: { count: 3, intervalMs: 500 } },
      postPromotionAnalysis: { verifiers: ['proxy'] },
    });
    const { actions } = apply(
      blueServesV1,
      strategy.deploy({ version: 'v2', stable: blueServesV1.pools[0], state: blueServesV1, replicas: 2 }),
    );
    expect(actions.filter((a) => a.type === 'analyze')).toEqual([
      {
        type: 'analyze',
        name: 'pre-promotion',
        pools: ['green'],
        verifiers: ['http-validation'],
        gate: { count: 3, intervalMs: 500 },
      },
      { type: 'analyze', name: 'post-promotion', pools: ['green'], verifiers: ['proxy'] },
    ]);
  });

  it('skips an analysis switched off with false', () => {
    const r = release(
      blueGreen({ prePromotionAnalysis: false, postPromotionAnalysis: false }),
      blueServesV1,
      'v2',
    );
    expect(r.deploy.filter((s) => s.startsWith('analyze'))).toEqual([]);
  });

  it('waits for engine.promote before the switch when autoPromotion is off', () => {
    const r = release(blueGreen({ autoPromotion: false }), blueServesV1, 'v2');
    expect(r.deploy.slice(0, 4)).toEqual([
      'provision green=v2x2',
      'analyze pre-promotion green',
      'pause until approved',
      'route green=100',
    ]);
  });

  it('skips the post-promotion analysis when the promotion is full', () => {
    const r = release(blueGreen({ autoPromotion: false }), blueServesV1, 'v2', {
      pause: (a) =>
        a.durationMs === undefined ? { resumedBy: 'approval', full: true } : { resumedBy: 'timer' },
    });
    expect(r.deploy).not.toContain('analyze post-promotion green');
    expect(r.deploy).toContain('route green=100');
  });

  it('retires a preview colour left running another version before provisioning it', () => {
    const state = { pools: [pool('blue', 'v1', 100), pool('green', 'v0', 0)] };
    const r = release(blueGreen(), state, 'v2');
    expect(r.deploy.slice(0, 2)).toEqual(['retire green', 'provision green=v2x2']);
    expect(shape(r.state)).toEqual([['green', 'v2', 100]]);
  });

  it('moves stray traffic back to the stable colour before the preview comes up', () => {
    const state = { pools: [pool('blue', 'v1', 90), pool('green', 'v0', 10)] };
    const r = release(blueGreen(), state, 'v2');
    expect(r.deploy.slice(0, 3)).toEqual(['route blue=100', 'retire green', 'provision green=v2x2']);
  });

  it('plans from the target state when a resumed run hands stable back as "[Circular]"', () => {
    const live = blueGreen().deploy({
      version: 'v2',
      stable: blueServesV1.pools[0],
      state: blueServesV1,
      replicas: 2,
    });
    const replayed = blueGreen().deploy({
      version: 'v2',
      stable: '[Circular]' as never,
      state: structuredClone(blueServesV1),
      replicas: 2,
    });
    expect(JSON.stringify(apply(blueServesV1, replayed).actions)).toBe(
      JSON.stringify(apply(blueServesV1, live).actions),
    );
  });

  it('is deterministic: the same input and outcomes give the same actions (the engine replays it)', () => {
    const a = apply(
      blueServesV1,
      blueGreen().deploy({ version: 'v2', stable: blueServesV1.pools[0], state: blueServesV1, replicas: 2 }),
    );
    const b = apply(
      blueServesV1,
      blueGreen().deploy({ version: 'v2', stable: blueServesV1.pools[0], state: blueServesV1, replicas: 2 }),
    );
    expect(JSON.stringify(a.actions)).toBe(JSON.stringify(b.actions));
  });
});

describe('blueGreen: failures and rollbacks', () => {
  it('retires the preview when the pre-promotion analysis fails: production never saw it', () => {
    const r = release(blueGreen(), blueServesV1, 'v2', { analysis: { 'pre-promotion': 'fail' } });
    expect(r.deploy).not.toContain('route green=100');
    expect(r.undo).toEqual(['promote blue', 'retire green']);
    expect(shape(r.state)).toEqual([['blue', 'v1', 100]]);
  });

  it('switches back to warm blue at once when the post-promotion analysis fails, then retires green after the abort delay', () => {
    const r = release(blueGreen({ abortScaleDownDelayMs: 10_000 }), blueServesV1, 'v2', {
      analysis: { 'post-promotion': 'fail' },
    });
    expect(r.undo).toEqual(['route blue=100', 'promote blue', 'pause 10000', 'retire green']);
    expect(shape(r.state)).toEqual([['blue', 'v1', 100]]);
  });

  it('retires the new colour at once after a switch back when abortScaleDownDelayMs is 0', () => {
    const r = release(blueGreen({ abortScaleDownDelayMs: 0 }), blueServesV1, 'v2', {
      analysis: { 'post-promotion': 'inconclusive' },
    });
    expect(r.undo).toEqual(['route blue=100', 'promote blue', 'retire green']);
  });

  it('uses the warm colour for an emergency rollback during the scale-down delay: no provision, one switch', () => {
    const during = { pools: [pool('blue', 'v1', 0), pool('green', 'v2', 100)] };
    const { actions, state } = apply(
      during,
      blueGreen({ abortScaleDownDelayMs: 0 }).undo({
        to: 'v1',
        state: during,
        replicas: 2,
        reason: 'emergency',
      }),
    );
    expect(steps(actions)).toEqual(['route blue=100', 'promote blue', 'retire green']);
    expect(shape(state)).toEqual([['blue', 'v1', 100]]);
  });

  it('brings the old version up in the idle colour for an emergency rollback after the delay', () => {
    const after = { pools: [pool('green', 'v2', 100)] };
    const { actions, state } = apply(
      after,
      blueGreen({ abortScaleDownDelayMs: 0 }).undo({
        to: 'v1',
        state: after,
        replicas: 2,
        reason: 'emergency',
      }),
    );
    expect(steps(actions)).toEqual(['provision blue=v1x2', 'route blue=100', 'promote blue', 'retire green']);
    expect(shape(state)).toEqual([['blue', 'v1', 100]]);
  });

  it('scales a warm colour that lost replicas back to full size before switching to it', () => {
    const degraded = { pools: [{ ...pool('blue', 'v1', 0), ready: 1 }, pool('green', 'v2', 100)] };
    const { actions } = apply(
      degraded,
      blueGreen({ abortScaleDownDelayMs: 0 }).undo({
        to: 'v1',
        state: degraded,
        replicas: 2,
        reason: 'emergency',
      }),
    );
    expect(steps(actions).slice(0, 2)).toEqual(['provision blue=v1x2', 'route blue=100']);
  });

  it('makes way in the idle colour when it runs a third version', () => {
    const state = { pools: [pool('green', 'v2', 100), pool('blue', 'v3', 0)] };
    const { actions } = apply(
      state,
      blueGreen({ abortScaleDownDelayMs: 0 }).undo({ to: 'v1', state, replicas: 2, reason: 'emergency' }),
    );
    expect(steps(actions)).toEqual([
      'retire blue',
      'provision blue=v1x2',
      'route blue=100',
      'promote blue',
      'retire green',
    ]);
  });

  it('keeps the model rules at every stop of a release: any analysis failing leaves one colour serving v1', () => {
    for (const name of ['pre-promotion', 'post-promotion']) {
      for (const verdict of ['fail', 'inconclusive', 'error'] as const) {
        const r = release(blueGreen(), blueServesV1, 'v2', { analysis: { [name]: verdict } });
        expect(shape(r.state), `${name} ${verdict}`).toEqual([['blue', 'v1', 100]]);
      }
    }
  });
});

describe('blueGreen: options', () => {
  it('is a plain Strategy that defineStrategy accepts, needing traffic routing', () => {
    const s = defineStrategy(blueGreen());
    expect(s.name).toBe('blue-green');
    expect(s.requires).toEqual(['route']);
    expect(blueGreenDefaults).toEqual({
      autoPromotion: true,
      scaleDownDelayMs: 30_000,
      abortScaleDownDelayMs: 30_000,
    });
  });

  const bad: Array<[string, unknown]> = [
    ['scaleDownDelayMs', { scaleDownDelayMs: -1 }],
    ['scaleDownDelayMs', { scaleDownDelayMs: 1.5 }],
    ['scaleDownDelayMs', { scaleDownDelayMs: '30s' }],
    ['abortScaleDownDelayMs', { abortScaleDownDelayMs: Number.NaN }],
    ['autoPromotion', { autoPromotion: 'yes' }],
    ['prePromotionAnalysis', { prePromotionAnalysis: true }],
    ['prePromotionAnalysis.verifiers', { prePromotionAnalysis: { verifiers: [] } }],
    ['postPromotionAnalysis.verifiers', { postPromotionAnalysis: { verifiers: [''] } }],
    ['prePromotionAnalysis.gate.count', { prePromotionAnalysis: { gate: { count: 0 } } }],
    ['postPromotionAnalysis.gate.intervalMs', { postPromotionAnalysis: { gate: { intervalMs: -5 } } }],
    [
      'postPromotionAnalysis.gate.measurementTimeoutMs',
      { postPromotionAnalysis: { gate: { measurementTimeoutMs: 0 } } },
    ],
    ['prePromotionAnalysis.gate.dryRun', { prePromotionAnalysis: { gate: { dryRun: 'proxy' } } }],
    ['prePromotionAnalysis.gate.intervall', { prePromotionAnalysis: { gate: { intervall: 5 } } }],
    ['prePromotionAnalysis.template', { prePromotionAnalysis: { template: 'x' } }],
    ['scaleDownDelaySeconds', { scaleDownDelaySeconds: 30 }],
    ['options', 'fast'],
  ];
  it.each(bad)('rejects a bad %s with CG_CONFIG_INVALID when the strategy is made', (field, options) => {
    let error: unknown;
    try {
      blueGreen(options as never);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigInvalidError);
    expect(error).toMatchObject({ code: 'CG_CONFIG_INVALID', plugin: 'blue-green', details: { field } });
  });

  it('copies the options: changing them afterwards does not change the plan being replayed', () => {
    const gate = { count: 2 };
    const strategy = blueGreen({ prePromotionAnalysis: { gate } });
    gate.count = 9;
    const { actions } = apply(
      blueServesV1,
      strategy.deploy({ version: 'v2', stable: blueServesV1.pools[0], state: blueServesV1, replicas: 2 }),
    );
    expect(actions.find((a) => a.type === 'analyze')).toMatchObject({ gate: { count: 2 } });
  });
});
