import type { AnalysisResult } from '../analysis/types.js';
import { checkAction } from '../rules.js';
import { servingPool } from '../strategies/restore.js';
import type { Action, ActionOutcome } from '../strategies/types.js';
import { describeAction } from './actions.js';
import { checkVersion } from './config.js';
import type { EngineContext } from './run-start.js';
import type { Plan } from './types.js';

/** The outcome a dry run assumes for each action: everything passes and is ready. */
export function simulate(action: Action): ActionOutcome {
  switch (action.type) {
    case 'provision':
      return {
        name: action.pool,
        version: action.version,
        replicas: action.replicas,
        ready: action.replicas,
        weight: 0,
        endpoints: [],
      };
    case 'route':
      return { weights: action.weights };
    case 'analyze':
      return {
        name: action.name,
        verdict: 'pass',
        reason: 'dry run',
        measurements: [],
      } satisfies AnalysisResult;
    case 'pause':
      return { resumedBy: 'skip' };
    case 'promote':
      return { pool: action.pool, version: '' };
    case 'retire':
      return { pool: action.pool };
  }
}

/** The actions a release would take, computed with no side effect (the target is only described). */
export async function dryRun(
  ctx: EngineContext,
  o: { version: string; signal?: AbortSignal | undefined },
): Promise<Plan> {
  const { options } = ctx;
  const { target, strategy } = options;
  const version = checkVersion(o?.version);
  const state = await ctx.calls.call(
    { kind: 'target', plugin: target.name, method: 'describe', phase: 'preflight', signal: o.signal },
    (c) => target.describe({ signal: c.signal }),
  );
  const stable = servingPool(state.pools);
  const replicas = options.replicas ?? stable?.replicas ?? 2;
  const actions: Action[] = [];
  const gen = strategy.deploy({ version, stable, state, replicas });
  let next = gen.next();
  while (!next.done) {
    const a = next.value;
    checkAction(a, { plugin: strategy.name });
    actions.push(a);
    next = gen.next(simulate(a));
  }
  return {
    environment: options.environment,
    version,
    from: stable?.version,
    strategy: strategy.name,
    replicas,
    actions,
    steps: actions.map(describeAction),
    ...(strategy.summarize ? { summary: strategy.summarize({ version, actions }) } : {}),
  };
}
