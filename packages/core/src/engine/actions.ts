import { runGate } from '../analysis/gate.js';
import type { AnalysisResult, GateOptions, MeasuredCheck, Verifier } from '../analysis/types.js';
import { CapabilityMissingError, ConfigInvalidError, TargetOperationError } from '../errors.js';
import type { Phase } from '../events/types.js';
import type { Logger } from '../logger.js';
import type { Action, ActionOutcome, PauseOutcome } from '../strategies/types.js';
import type { PoolState, Target, Weights } from '../target/types.js';
import { type RetryOptions, retryDefaults } from '../util/retry.js';
import { sleep } from '../util/time.js';
import type { PluginCalls } from './plugin-call.js';

/** What executing an action needs from the engine. */
export interface ActionEnv {
  environment: string;
  target: Target;
  /** The engine's verifiers, each call bounded by the engine's verifier deadline. */
  verifiers: readonly Verifier[];
  logger: Logger;
  retry: RetryOptions | undefined;
  /** The one wrapper every plugin call goes through (deadline, scoped logger, tagged errors). */
  calls: PluginCalls;
  /** Waits for `engine.promote(runId)`; resolves with how the pause ended. */
  waitForApproval(signal: AbortSignal): Promise<{ full: boolean }>;
  onWeights(weights: Record<string, number>): void;
  onAnalysis(result: AnalysisResult, version: string): void;
  /** Every measured check of a gate, as it is taken (`analysis.measured`). */
  onMeasured?(check: MeasuredCheck, version: string): void | Promise<void>;
}

/**
 * Calls a target operation through the engine's plugin wrapper: bounded by the target deadline, with
 * retries of retryable failures inside it, errors tagged with the target and phase.
 */
export function targetCall<T>(
  env: ActionEnv,
  phase: Phase,
  what: string,
  fn: (ctx: { signal: AbortSignal; logger: Logger }) => Promise<T>,
  signal: AbortSignal,
): Promise<T> {
  return env.calls.call(
    {
      kind: 'target',
      plugin: env.target.name,
      method: what,
      phase,
      signal,
      retry: env.retry ?? retryDefaults,
    },
    fn,
  );
}

/** Verifiers whose every measurement goes through the engine's plugin wrapper. */
export function boundVerifiers(verifiers: readonly Verifier[], calls: PluginCalls): Verifier[] {
  return verifiers.map((v) => ({
    name: v.name,
    verify: (ctx) =>
      calls.call(
        {
          kind: 'verifier',
          plugin: v.name,
          method: 'verify',
          phase: 'analysis',
          signal: ctx.signal,
          untagged: true,
        },
        ({ signal, logger }) => v.verify({ ...ctx, signal, logger }),
      ),
  }));
}

/** Runs an analysis gate against some pools (or the target's front endpoint). */
export async function analyze(
  env: ActionEnv,
  name: string,
  version: string,
  pools: PoolState[],
  endpoint: string | undefined,
  gate: GateOptions | undefined,
  only: string[] | undefined,
  signal: AbortSignal,
): Promise<AnalysisResult> {
  const verifiers = only ? env.verifiers.filter((v) => only.includes(v.name)) : env.verifiers;
  if (only) {
    const missing = only.filter((n) => !env.verifiers.some((v) => v.name === n));
    if (missing.length)
      throw new ConfigInvalidError(`analysis ${name} names unknown verifiers: ${missing.join(', ')}`);
  }
  if (verifiers.length === 0) {
    return { name, verdict: 'pass', reason: 'no verifiers configured', measurements: [] };
  }
  if (!endpoint) {
    throw new TargetOperationError(
      `analysis ${name}: no endpoint to check (pools ${pools.map((p) => p.name).join(', ') || 'none'})`,
    );
  }
  const result = await runGate(
    name,
    verifiers,
    {
      environment: env.environment,
      version,
      pools,
      endpoint,
      target: env.target,
      signal,
      logger: env.logger,
    },
    gate,
    { onMeasured: (m) => env.onMeasured?.(m, version) },
  );
  env.onAnalysis(result, version);
  if (result.pause) {
    // The gate's policy holds the release: an operator's promote passes it, an abort ends the run.
    env.logger.warn(`analysis ${name} ended ${result.outcome}; held for an operator (promote or abort)`);
    await env.waitForApproval(signal);
    return {
      ...result,
      verdict: 'pass',
      reason: `passed by an operator after ${result.outcome}: ${result.reason}`,
    };
  }
  return result;
}

/** Executes one strategy action against the target. */
export async function executeAction(
  env: ActionEnv,
  phase: Phase,
  action: Action,
  signal: AbortSignal,
): Promise<ActionOutcome> {
  const { target } = env;
  switch (action.type) {
    case 'provision':
      return targetCall(
        env,
        phase,
        `provision ${action.pool}`,
        (c) => target.provision({ pool: action.pool, version: action.version, replicas: action.replicas }, c),
        signal,
      );
    case 'route': {
      const route = target.route?.bind(target);
      if (!route)
        throw new CapabilityMissingError(
          `target ${target.name} cannot route traffic, which this strategy needs`,
        );
      await targetCall(env, phase, 'route', (c) => route(action.weights, c), signal);
      env.onWeights(action.weights);
      return { weights: action.weights };
    }
    case 'analyze': {
      const state = await targetCall(
        env,
        phase,
        'describe',
        (c) => target.describe({ signal: c.signal }),
        signal,
      );
      const pools = action.pools
        ? action.pools.map((n) => {
            const p = state.pools.find((x) => x.name === n);
            if (!p)
              throw new TargetOperationError(
                `analysis ${action.name}: pool ${n} does not exist on target ${target.name}`,
              );
            return p;
          })
        : state.pools.filter((p) => p.weight > 0);
      const version = pools[0]?.version ?? 'unknown';
      const endpoint = pools[0]?.endpoints[0] ?? state.endpoint;
      return analyze(env, action.name, version, pools, endpoint, action.gate, action.verifiers, signal);
    }
    case 'pause': {
      // Ends on the timer or an approval, whichever comes first; the loser is cancelled.
      const settled = new AbortController();
      const both = AbortSignal.any([signal, settled.signal]);
      const waits: Array<Promise<PauseOutcome>> = [
        env
          .waitForApproval(both)
          .then(({ full }) => ({ resumedBy: 'approval' as const, ...(full ? { full } : {}) })),
      ];
      if (action.durationMs !== undefined) {
        waits.push(sleep(action.durationMs, both).then(() => ({ resumedBy: 'timer' as const })));
      }
      try {
        return await Promise.race(waits);
      } finally {
        settled.abort();
        for (const w of waits) w.catch(() => undefined);
      }
    }
    case 'promote': {
      const state = await targetCall(
        env,
        phase,
        'describe',
        (c) => target.describe({ signal: c.signal }),
        signal,
      );
      const pool = state.pools.find((p) => p.name === action.pool);
      if (!pool)
        throw new TargetOperationError(
          `cannot promote pool ${action.pool}: it does not exist on target ${target.name}`,
        );
      return { pool: pool.name, version: pool.version };
    }
    case 'retire':
      await targetCall(env, phase, `retire ${action.pool}`, (c) => target.retire(action.pool, c), signal);
      return { pool: action.pool };
  }
}

/** Weights in the runbook's words: `v1=75% v2=25%` (`{}`: no traffic). */
export function formatWeights(weights: Weights): string {
  const parts = Object.entries(weights).map(([pool, w]) => `${pool}=${w}%`);
  return parts.length > 0 ? parts.join(' ') : 'no traffic (maintenance)';
}

/**
 * One line saying what an action does, for logs, reports and incident reports.
 * @example
 * ```ts
 * describeAction({ type: 'route', weights: { v1: 75, v2: 25 } }) // 'route v1=75% v2=25%'
 * ```
 */
export function describeAction(action: Action): string {
  switch (action.type) {
    case 'provision':
      return `provision ${action.pool} = ${action.version} x${action.replicas}`;
    case 'route':
      return `route ${formatWeights(action.weights)}`;
    case 'analyze':
      return `analyze ${action.name}${action.pools ? ` (${action.pools.join(', ')})` : ''}`;
    case 'pause':
      return action.durationMs !== undefined ? `pause ${action.durationMs} ms` : 'pause until approved';
    case 'promote':
      return `promote ${action.pool}`;
    case 'retire':
      return `retire ${action.pool}`;
  }
}
