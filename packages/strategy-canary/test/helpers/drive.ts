import type { Action, ActionOutcome, ActionPlan, AnalysisResult, PoolState } from '@codegraph/release-core';

/** One short line per action, to compare whole plans at a glance. */
export function line(a: Action): string {
  switch (a.type) {
    case 'provision':
      return `provision ${a.pool}=${a.version}x${a.replicas}`;
    case 'route':
      return `route ${Object.entries(a.weights)
        .map(([p, w]) => `${p}:${w}`)
        .join(' ')}`;
    case 'analyze':
      return `analyze ${a.name} [${(a.pools ?? []).join(',')}] by ${(a.verifiers ?? []).join(',')}`;
    case 'pause':
      return a.durationMs === undefined ? 'pause until approved' : `pause ${a.durationMs}`;
    case 'promote':
      return `promote ${a.pool}`;
    case 'retire':
      return `retire ${a.pool}`;
  }
}

/** A pool as a target would report it. */
export const pool = (name: string, version: string, weight: number, replicas = 2): PoolState => ({
  name,
  version,
  replicas,
  ready: replicas,
  weight,
  endpoints: [],
});

/** How the fake engine answers: analyses pass unless named in `fail`; pauses end on their timer unless `full`. */
export interface DriveAnswers {
  fail?: string[];
  fullAt?: number;
}

/**
 * Runs a strategy's plan the way the engine does, answering each action with the outcome the engine
 * would feed back, and stopping (as the engine does) at the first analysis that does not pass.
 */
export function drive(
  plan: ActionPlan,
  answers: DriveAnswers = {},
): { actions: Action[]; lines: string[]; stoppedAt?: string } {
  const actions: Action[] = [];
  let pauses = 0;
  let next = plan.next();
  while (!next.done) {
    const a = next.value;
    actions.push(a);
    let outcome: ActionOutcome;
    switch (a.type) {
      case 'provision':
        outcome = { ...pool(a.pool, a.version, 0, a.replicas) };
        break;
      case 'route':
        outcome = { weights: a.weights };
        break;
      case 'analyze': {
        const failed = answers.fail?.includes(a.name);
        const result: AnalysisResult = {
          name: a.name,
          verdict: failed ? 'fail' : 'pass',
          reason: 'test',
          measurements: [],
        };
        if (failed) {
          plan.return();
          return { actions, lines: actions.map(line), stoppedAt: a.name };
        }
        outcome = result;
        break;
      }
      case 'pause':
        pauses++;
        outcome = answers.fullAt === pauses ? { resumedBy: 'approval', full: true } : { resumedBy: 'timer' };
        break;
      case 'promote':
        outcome = { pool: a.pool, version: 'x' };
        break;
      case 'retire':
        outcome = { pool: a.pool };
        break;
    }
    next = plan.next(outcome);
  }
  return { actions, lines: actions.map(line) };
}
