import type { AnalysisResult, ReleaseEngine, ReleaseEvent, RunResult, Target } from '@codegraph/release-core';
import { expect } from 'vitest';
import { type Sample, servingVersion, shifts, steadyLoad } from './env.js';

/** One release environment as the scenarios need it, whatever the target (local proxy, nginx). */
export interface ScenarioEnv {
  engine: ReleaseEngine;
  events: ReleaseEvent[];
  target: Target;
  /** The URL clients use. */
  front: string;
}

/** Polls `check` until it holds; fails after `timeoutMs`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Releases `version` under a steady load through the front, and returns the run with every request made. */
export async function releaseUnderLoad(env: ScenarioEnv, version: string) {
  const load = steadyLoad(env.front);
  let result: RunResult;
  try {
    await until(() => load.samples.length >= 50, 10_000, 'load through the front endpoint');
    const before = env.events.length;
    result = await env.engine.release({ version });
    const after = load.samples.length;
    await until(() => load.samples.length >= after + 20, 10_000, 'load after the release');
    const samples = await load.stop();
    return { result, samples, events: env.events.slice(before) };
  } finally {
    await load.stop();
  }
}

/** Checks (name → verdict) of the analyses that did not pass. */
export const failedChecks = (analyses: AnalysisResult[]) =>
  analyses
    .filter((a) => a.verdict !== 'pass')
    .flatMap((a) =>
      a.measurements.flatMap((m) => m.checks.filter((c) => c.verdict === 'fail').map((c) => c.name)),
    );

/** Asserts the canary was undone: one route of all traffic to stable, no request to the canary after it, pools gone. */
export async function expectRolledBack(
  env: ScenarioEnv,
  run: { result: RunResult; samples: Sample[]; events: ReleaseEvent[] },
  canaryPool: string,
  stable: string,
) {
  expect(run.result.status).toBe('rolled-back');
  expect(run.result.serving).toBe(stable);
  const routes = shifts(run.events);
  const back = routes.findIndex((r) => r.weights[stable] === 100);
  expect(back).toBeGreaterThan(0);
  // All traffic went back in one route change, straight from the canary weights.
  expect(routes[back]!.weights).toEqual({ [stable]: 100 });
  expect(routes[back - 1]!.weights[canaryPool]).toBeGreaterThan(0);
  const late = run.samples.filter((s) => s.pool === canaryPool && s.start > routes[back]!.at);
  expect(late).toEqual([]);
  const state = await env.target.describe();
  expect(state.pools.map((p) => [p.name, p.weight])).toEqual([[stable, 100]]);
  expect(await servingVersion(env.front)).toBe(stable);
}
