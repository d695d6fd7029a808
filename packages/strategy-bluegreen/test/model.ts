import type {
  Action,
  ActionOutcome,
  ActionPlan,
  AnalysisResult,
  PauseOutcome,
  PoolState,
  TargetState,
} from '@codegraph/release-core';

/** How a test answers the actions that have a choice: analyses and pauses. */
export interface Answers {
  /** Verdict of the named analysis. @default 'pass' */
  analysis?: Record<string, AnalysisResult['verdict']>;
  /** How pauses end. @default timer for timed pauses, approval otherwise */
  pause?: (action: Extract<Action, { type: 'pause' }>) => PauseOutcome;
}

/** A pool of the model target. */
export const pool = (name: string, version: string, weight: number, replicas = 2): PoolState => ({
  name,
  version,
  replicas,
  ready: replicas,
  weight,
  endpoints: [],
});

/**
 * Applies a plan to a model of a target with the rules every real target keeps (localTarget's): no
 * route to a pool that is missing or not ready, weights summing to 100, no retire of a pool with
 * traffic, no provision of a pool that runs another version. Breaking one throws, naming the step.
 * A failed analysis stops the plan, as the engine does.
 */
export function apply(state: TargetState, plan: ActionPlan, answers: Answers = {}) {
  const pools = new Map(state.pools.map((p) => [p.name, { ...p }]));
  const actions: Action[] = [];
  let failed: string | undefined;
  let next = plan.next();
  while (!next.done) {
    const action = next.value;
    actions.push(action);
    const step = `step ${actions.length} (${action.type})`;
    let outcome: ActionOutcome;
    switch (action.type) {
      case 'provision': {
        const p = pools.get(action.pool);
        if (p && p.version !== action.version)
          throw new Error(`${step}: ${action.pool} runs ${p.version}, cannot provision ${action.version}`);
        const up = { ...(p ?? pool(action.pool, action.version, 0, 0)), replicas: action.replicas };
        up.ready = action.replicas;
        pools.set(action.pool, up);
        outcome = up;
        break;
      }
      case 'route': {
        const sum = Object.values(action.weights).reduce((a, b) => a + b, 0);
        if (sum !== 100) throw new Error(`${step}: weights sum to ${sum}`);
        for (const [name, w] of Object.entries(action.weights)) {
          const p = pools.get(name);
          if (!p) throw new Error(`${step}: route to missing pool ${name}`);
          if (w > 0 && p.ready === 0) throw new Error(`${step}: route to ${name} with no ready replica`);
        }
        for (const p of pools.values()) p.weight = action.weights[p.name] ?? 0;
        outcome = { weights: action.weights };
        break;
      }
      case 'analyze': {
        for (const name of action.pools ?? [])
          if (!pools.has(name)) throw new Error(`${step}: analysis of missing pool ${name}`);
        const verdict = answers.analysis?.[action.name] ?? 'pass';
        outcome = { name: action.name, verdict, reason: 'model', measurements: [] };
        if (verdict !== 'pass') {
          plan.return();
          failed = action.name;
          return { actions, state: snapshot(pools), failed };
        }
        break;
      }
      case 'pause':
        outcome =
          answers.pause?.(action) ??
          (action.durationMs === undefined ? { resumedBy: 'approval' } : { resumedBy: 'timer' });
        break;
      case 'promote': {
        const p = pools.get(action.pool);
        if (!p) throw new Error(`${step}: promote of missing pool ${action.pool}`);
        outcome = { pool: p.name, version: p.version };
        break;
      }
      case 'retire': {
        const p = pools.get(action.pool);
        if (p && p.weight > 0) throw new Error(`${step}: retire of ${action.pool} with weight ${p.weight}`);
        pools.delete(action.pool);
        outcome = { pool: action.pool };
        break;
      }
    }
    next = plan.next(outcome);
  }
  return { actions, state: snapshot(pools), failed };
}

function snapshot(pools: Map<string, PoolState>): TargetState {
  return { pools: [...pools.values()].sort((a, b) => a.name.localeCompare(b.name)) };
}

/** `[name, version, weight]` of every pool, for compact assertions. */
export const shape = (state: TargetState) => state.pools.map((p) => [p.name, p.version, p.weight]);

/** One line per action, as the engine logs them (short form). */
export const steps = (actions: Action[]): string[] => actions.map(step);

function step(a: Action): string {
  switch (a.type) {
    case 'provision':
      return `provision ${a.pool}=${a.version}x${a.replicas}`;
    case 'route':
      return `route ${Object.entries(a.weights)
        .map(([p, w]) => `${p}=${w}`)
        .join(',')}`;
    case 'analyze':
      return `analyze ${a.name} ${a.pools?.join(',') ?? ''}`.trim();
    case 'pause':
      return a.durationMs === undefined ? 'pause until approved' : `pause ${a.durationMs}`;
    case 'promote':
      return `promote ${a.pool}`;
    case 'retire':
      return `retire ${a.pool}`;
  }
}
