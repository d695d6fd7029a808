import { describe, expect, it } from 'vitest';
import type { AnalysisResult } from '../analysis/types.js';
import { checkAction } from '../rules.js';
import { servingPool } from '../strategies/restore.js';
import type { Action, ActionOutcome, ActionPlan, Strategy } from '../strategies/types.js';
import type { TargetState } from '../target/types.js';
import { type ModelTarget, modelTarget } from './model-target.js';

/** Options of {@link testStrategy}. */
export interface StrategySuiteOptions {
  /** Shown in the describe block. @default the strategy's name */
  name?: string;
  /** The strategy under test, or a factory called once per test. */
  strategy: Strategy | (() => Strategy);
  /** Replicas at full size. @default 2 */
  replicas?: number;
  /** The version serving before the release, and the one released. @default { from: 'v1.0.0', to: 'v2.0.0' } */
  versions?: { from: string; to: string };
  /** Most actions one plan may yield before the suite calls it endless. @default 500 */
  maxActions?: number;
}

/** One action a plan yielded, with the outcome it was fed. */
interface Step {
  action: Action;
  outcome: ActionOutcome;
}

/** What the suite feeds back for an action that is not applied to the model target. */
function outcomeOf(action: Action): ActionOutcome {
  switch (action.type) {
    case 'analyze':
      return {
        name: action.name,
        verdict: 'pass',
        reason: 'testStrategy',
        measurements: [],
      } satisfies AnalysisResult;
    case 'pause':
      return { resumedBy: action.durationMs === undefined ? 'approval' : 'timer' };
    default:
      throw new Error(`no outcome for ${action.type}`);
  }
}

/**
 * Runs a plan against the model target as the engine would: every action checked with core's rules,
 * route checked against what is ready, effects applied, outcomes fed back. Stops after `stopAfter`
 * actions (the generator is closed, as the engine does when an analysis fails).
 */
async function drive(
  plan: ActionPlan,
  target: ModelTarget,
  options: { maxActions: number; stopAfter?: number; replay?: readonly Step[] },
): Promise<Step[]> {
  const steps: Step[] = [];
  let next = plan.next();
  while (!next.done) {
    if (options.stopAfter !== undefined && steps.length >= options.stopAfter) {
      plan.return();
      break;
    }
    expect(steps.length, 'the plan yields a bounded number of actions').toBeLessThan(options.maxActions);
    const action = checkAction(next.value, { plugin: 'testStrategy' });
    const recorded = options.replay?.[steps.length];
    let outcome: ActionOutcome;
    if (recorded) {
      expect(action, `action ${steps.length} replays as journaled`).toEqual(recorded.action);
      outcome = recorded.outcome;
    } else {
      outcome = await apply(action, target);
    }
    steps.push({ action, outcome });
    next = plan.next(outcome);
  }
  return steps;
}

async function apply(action: Action, target: ModelTarget): Promise<ActionOutcome> {
  switch (action.type) {
    case 'provision':
      return target.provision(action);
    case 'route': {
      const pools = (await target.describe()).pools;
      for (const [pool, weight] of Object.entries(action.weights)) {
        if (weight === 0) continue;
        const p = pools.find((x) => x.name === pool);
        expect(p, `route sends ${weight}% to pool ${pool}, which does not exist`).toBeDefined();
        expect(
          p?.ready,
          `route sends ${weight}% to pool ${pool}, which has no ready replica`,
        ).toBeGreaterThan(0);
      }
      await target.route(action.weights);
      return { weights: action.weights };
    }
    case 'promote': {
      const pool = (await target.describe()).pools.find((p) => p.name === action.pool);
      expect(pool, `promote names pool ${action.pool}, which does not exist`).toBeDefined();
      return { pool: action.pool, version: pool?.version ?? '' };
    }
    case 'retire':
      await target.retire(action.pool);
      return { pool: action.pool };
    default:
      return outcomeOf(action);
  }
}

/** All traffic on ready pools running `version`: what a release or an undo must end with. */
function expectServing(state: TargetState, version: string, what: string): void {
  const routed = state.pools.filter((p) => p.weight > 0);
  expect(
    routed.reduce((n, p) => n + p.weight, 0),
    `${what}: weights add up to 100`,
  ).toBe(100);
  for (const p of routed) {
    expect(p.version, `${what}: pool ${p.name} takes traffic`).toBe(version);
    expect(p.ready, `${what}: pool ${p.name} takes traffic`).toBeGreaterThan(0);
  }
}

/**
 * The conformance suite every {@link Strategy} passes, run against the in-memory model target: every
 * action it yields (on a first release, a release and every undo) obeys core's rules (valid names,
 * weights that add up to 100 or `{}`); it never routes traffic to a pool that is not ready; it is
 * deterministic (replaying the journaled outcomes gives the same actions); a release ends with all
 * traffic on the new version; and undo, started after any number of the release's actions, brings
 * all traffic back to the previous version.
 *
 * @example
 * ```ts
 * import { testStrategy } from '@codegraph/release-core/testing'
 * import { allAtOnce } from '../src/index.js'
 *
 * testStrategy({ strategy: allAtOnce(), replicas: 3 })
 * ```
 */
export function testStrategy(options: StrategySuiteOptions): void {
  const make = () => (typeof options.strategy === 'function' ? options.strategy() : options.strategy);
  const replicas = options.replicas ?? 2;
  const { from, to } = options.versions ?? { from: 'v1.0.0', to: 'v2.0.0' };
  const maxActions = options.maxActions ?? 500;

  /** A model target where `from` serves all traffic, released by the strategy itself. */
  async function serving(strategy: Strategy): Promise<ModelTarget> {
    const target = modelTarget();
    const state = await target.describe();
    await drive(strategy.deploy({ version: from, stable: undefined, state, replicas }), target, {
      maxActions,
    });
    return target;
  }

  async function release(strategy: Strategy, target: ModelTarget, stopAfter?: number) {
    const state = await target.describe();
    const input = { version: to, stable: servingPool(state.pools), state, replicas };
    return drive(strategy.deploy(input), target, {
      maxActions,
      ...(stopAfter === undefined ? {} : { stopAfter }),
    });
  }

  describe(`${options.name ?? make().name} strategy conformance`, () => {
    it('a first release ends with all traffic on the new version, on ready pools', async () => {
      const target = await serving(make());
      expectServing(await target.describe(), from, 'after the first release');
    });

    it('a release ends with all traffic on the new version, every action valid and routed to ready pools', async () => {
      const strategy = make();
      const target = await serving(strategy);
      const steps = await release(strategy, target);
      expect(steps.length).toBeGreaterThan(0);
      expectServing(await target.describe(), to, 'after the release');
    });

    it('is deterministic: replaying the journaled outcomes yields the same actions', async () => {
      const strategy = make();
      const target = await serving(strategy);
      const state = await target.describe();
      const input = { version: to, stable: servingPool(state.pools), state, replicas };
      const first = await drive(strategy.deploy(input), target, { maxActions });
      // A resumed engine replays from the same input with the recorded outcomes: same actions, in order.
      const again = await drive(make().deploy(structuredClone(input)), target, { maxActions, replay: first });
      expect(again.map((s) => s.action)).toEqual(first.map((s) => s.action));
    });

    it('undoes from every point of a release: all traffic back on the previous version', async () => {
      const strategy = make();
      const total = (await release(strategy, await serving(strategy))).length;
      for (let k = 0; k <= total; k++) {
        const target = await serving(strategy);
        await release(strategy, target, k);
        const state = await target.describe();
        await drive(strategy.undo({ to: from, state, replicas, reason: 'failed' }), target, { maxActions });
        expectServing(await target.describe(), from, `undo after ${k} of ${total} actions`);
      }
    });

    it('an emergency undo after a finished release brings the previous version back', async () => {
      const strategy = make();
      const target = await serving(strategy);
      await release(strategy, target);
      const state = await target.describe();
      await drive(strategy.undo({ to: from, state, replicas, reason: 'emergency' }), target, { maxActions });
      expectServing(await target.describe(), from, 'after the emergency undo');
    });
  });
}
