import { describe, expect, it } from 'vitest';
import { type Action, type PoolState, restoreVersion, rolling } from '../src/index.js';

const pool = (name: string, version: string, replicas: number, weight: number): PoolState => ({
  name,
  version,
  replicas,
  ready: replicas,
  weight,
  endpoints: [],
});

/** Plays a plan against a model of the target and checks the invariants a rolling update must keep. */
function play(actions: Action[], start: PoolState[]) {
  const pools = new Map(start.map((p) => [p.name, { ...p }]));
  const trace: Array<{ capacity: number; total: number }> = [];
  for (const a of actions) {
    if (a.type === 'provision')
      pools.set(a.pool, { ...pool(a.pool, a.version, a.replicas, pools.get(a.pool)?.weight ?? 0) });
    if (a.type === 'route') {
      const sum = Object.values(a.weights).reduce((x, y) => x + y, 0);
      expect(sum).toBe(100);
      for (const [name, w] of Object.entries(a.weights)) {
        // Traffic only ever goes to a pool that exists and has replicas.
        if (w > 0) expect(pools.get(name)?.replicas ?? 0).toBeGreaterThan(0);
      }
      for (const p of pools.values()) p.weight = a.weights[p.name] ?? 0;
    }
    if (a.type === 'retire') {
      expect(pools.get(a.pool)?.weight ?? 0).toBe(0);
      pools.delete(a.pool);
    }
    const serving = [...pools.values()].filter((p) => p.weight > 0).reduce((n, p) => n + p.replicas, 0);
    const total = [...pools.values()].reduce((n, p) => n + p.replicas, 0);
    trace.push({ capacity: serving, total });
  }
  return { pools, trace };
}

function deployActions(strategy: ReturnType<typeof rolling>, replicas: number, stable?: PoolState) {
  const gen = strategy.deploy({ version: 'v2', stable, state: { pools: stable ? [stable] : [] }, replicas });
  const actions: Action[] = [];
  let next = gen.next();
  while (!next.done) {
    actions.push(next.value);
    next = gen.next({ name: 'x', verdict: 'pass', reason: '', measurements: [] });
  }
  return actions;
}

describe('rolling strategy', () => {
  it('replaces 4 replicas in batches within 25% surge and 25% unavailability, gating each batch', () => {
    const stable = pool('v1', 'v1', 4, 100);
    const actions = deployActions(rolling(), 4, stable);
    const { pools, trace } = play(actions, [stable]);
    expect([...pools.keys()]).toEqual(['v2']);
    expect(pools.get('v2')).toMatchObject({ replicas: 4, weight: 100 });
    for (const t of trace) {
      expect(t.total).toBeLessThanOrEqual(5); // maxSurge 1
    }
    expect(actions.filter((a) => a.type === 'analyze').length).toBeGreaterThanOrEqual(2);
    expect(actions.at(-1)).toEqual({ type: 'promote', pool: 'v2' });
  });

  it('never drops below full capacity with maxUnavailable 0', () => {
    const stable = pool('v1', 'v1', 3, 100);
    const actions = deployActions(rolling({ maxSurge: 1, maxUnavailable: 0 }), 3, stable);
    const { trace } = play(actions, [stable]);
    // Serving capacity (replicas of pools that take traffic) never falls below 3 once traffic moves.
    for (const t of trace) expect(t.capacity).toBeGreaterThanOrEqual(3);
    expect(actions.filter((a) => a.type === 'analyze')).toHaveLength(3);
  });

  it('keeps one replica serving when a single replica is updated with surge 0', () => {
    const stable = pool('v1', 'v1', 1, 100);
    const actions = deployActions(rolling({ maxSurge: 0, maxUnavailable: 1 }), 1, stable);
    const { trace } = play(actions, [stable]);
    for (const t of trace) expect(t.capacity).toBeGreaterThanOrEqual(1);
  });

  it('brings up, checks and then routes a first release', () => {
    const actions = deployActions(rolling(), 2);
    expect(actions.map((a) => a.type)).toEqual(['provision', 'analyze', 'route', 'promote']);
  });

  it('refuses maxSurge and maxUnavailable both 0, and malformed percentages, before any release', () => {
    expect(() =>
      deployActions(rolling({ maxSurge: 0, maxUnavailable: 0 }), 4, pool('v1', 'v1', 4, 100)),
    ).toThrowError(expect.objectContaining({ code: 'CG_CONFIG_INVALID' }));
    expect(() => rolling({ maxSurge: '25 percent' as '25%' })).toThrowError(
      expect.objectContaining({ code: 'CG_CONFIG_INVALID' }),
    );
    expect(() => rolling({ maxUnavailable: -1 })).toThrowError(
      expect.objectContaining({ code: 'CG_CONFIG_INVALID' }),
    );
  });

  it('undoes from a half-finished update by restoring the old pool to full size before moving traffic', () => {
    const state = { pools: [pool('v1', 'v1', 2, 50), pool('v2', 'v2', 2, 50)] };
    const gen = restoreVersion({ to: 'v1', state, replicas: 4, reason: 'failed' });
    const actions: Action[] = [...(gen as Iterable<Action>)];
    expect(actions).toEqual([
      { type: 'provision', pool: 'v1', version: 'v1', replicas: 4 },
      { type: 'route', weights: { v1: 100 } },
      { type: 'promote', pool: 'v1' },
      { type: 'retire', pool: 'v2' },
    ]);
    play(actions, state.pools);
  });
});
