import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  type Action,
  type ActionOutcome,
  type ActionPlan,
  type AnalysisResult,
  analyze,
  type PauseOutcome,
  type PoolState,
  pause,
  promote,
  provision,
  retire,
  route,
  type Weights,
} from '../src/index.js';

describe('typed strategy authoring', () => {
  it('a strategy gets the outcome type of the action it yielded, with no cast', () => {
    const seen: unknown[] = [];
    function* plan(): ActionPlan {
      const pool = yield* provision({ pool: 'canary-v2', version: 'v2', replicas: 1 });
      expectTypeOf(pool).toEqualTypeOf<PoolState>();
      seen.push(pool.ready);
      const applied = yield* route({ stable: 90, 'canary-v2': 10 });
      expectTypeOf(applied).toEqualTypeOf<{ weights: Weights }>();
      const verdict = yield* analyze({ name: 'canary-10', pools: ['canary-v2'] });
      expectTypeOf(verdict).toEqualTypeOf<AnalysisResult>();
      seen.push(verdict.verdict);
      const resumed = yield* pause({ reason: 'canary at 10%' });
      expectTypeOf(resumed).toEqualTypeOf<PauseOutcome>();
      if (resumed.full) seen.push('full');
      const promoted = yield* promote('canary-v2');
      expectTypeOf(promoted).toEqualTypeOf<{ pool: string; version: string }>();
      yield* retire('stable');
    }
    const outcomes: Record<Action['type'], ActionOutcome> = {
      provision: { name: 'canary-v2', version: 'v2', replicas: 1, ready: 1, weight: 0, endpoints: [] },
      route: { weights: { stable: 90, 'canary-v2': 10 } },
      analyze: { name: 'canary-10', verdict: 'pass', reason: 'ok', measurements: [] },
      pause: { resumedBy: 'approval', full: true },
      promote: { pool: 'canary-v2', version: 'v2' },
      retire: { pool: 'stable' },
    };
    const yielded: Action[] = [];
    const gen = plan();
    let next = gen.next();
    while (!next.done) {
      yielded.push(next.value);
      next = gen.next(outcomes[next.value.type]);
    }
    expect(yielded).toEqual([
      { type: 'provision', pool: 'canary-v2', version: 'v2', replicas: 1 },
      { type: 'route', weights: { stable: 90, 'canary-v2': 10 } },
      { type: 'analyze', name: 'canary-10', pools: ['canary-v2'] },
      { type: 'pause', reason: 'canary at 10%' },
      { type: 'promote', pool: 'canary-v2' },
      { type: 'retire', pool: 'stable' },
    ]);
    expect(seen).toEqual([1, 'pass', 'full']);
  });
});
