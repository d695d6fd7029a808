import { CapabilityMissingError, type Target, type VerifyContext } from '@codegraph/release-core';
import { canaryJudge } from '@codegraph/strategy-canary';
import { afterEach, describe, expect, it } from 'vitest';
import { localEnv, steadyLoad } from './helpers/env.js';
import { until } from './helpers/scenarios.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** v1 and a 5x slower v2 behind the local proxy, half the traffic each, and the context a gate would pass. */
async function halfAndHalf() {
  const local = await localEnv({ v2: { FAULT_LATENCY_MS: '25' } });
  cleanups.push(local.cleanup);
  await local.target.provision({ pool: 'v1', version: 'v1', replicas: 1 });
  await local.target.provision({ pool: 'v2', version: 'v2', replicas: 1 });
  await local.target.route({ v1: 50, v2: 50 });
  const context = async (target: Target = local.target): Promise<VerifyContext> => {
    const { pools, endpoint } = await local.target.describe();
    const canary = pools.find((p) => p.name === 'v2')!;
    return { environment: 'staging', version: 'v2', pools: [canary], endpoint: endpoint ?? '', target };
  };
  return { ...local, context };
}

describe('canary judge on a real target', () => {
  it('stays inconclusive until both pools have served enough requests', async () => {
    const env = await halfAndHalf();
    const result = await canaryJudge({ minRequests: 30 }).verify(await env.context());
    expect(result.verdict).toBe('inconclusive');
    expect(result.checks[0]).toMatchObject({ name: 'judge.samples', verdict: 'inconclusive' });
    expect(result.checks[0]!.reason).toMatch(/v2 has 0.*need 30/);
  });

  it('compares the canary with the serving stable pool when there is no baseline, and fails it at 5x latency', async () => {
    const env = await halfAndHalf();
    const load = steadyLoad(await env.target.endpoint(), 4);
    try {
      await until(async () => (await env.target.traffic('v2')).requests >= 60, 20_000, 'canary requests');
      // The latency classifier fails a canary that is high at 3 looks in a row.
      const judge = canaryJudge({ thresholds: { p95Ms: 20 } });
      await judge.verify(await env.context());
      await judge.verify(await env.context());
      const result = await judge.verify(await env.context());
      expect(result.verdict).toBe('fail');
      const byName = Object.fromEntries(result.checks.map((c) => [c.name, c]));
      expect(byName['latency.mann_whitney']).toMatchObject({
        verdict: 'fail',
        query: 'traffic(v2) vs traffic(v1)',
      });
      expect(byName['errors.sequential']!.verdict).toBe('pass');
      expect(byName['latency.p95_ms']!.verdict).toBe('fail');
      expect(byName['latency.p95_ms']!.observed as number).toBeGreaterThan(25);
    } finally {
      await load.stop();
    }
  });

  it('refuses a target that reports no per-pool traffic, with an error retrying cannot fix', async () => {
    const env = await halfAndHalf();
    const { describe: d, provision, retire } = env.target;
    const blind: Target = { name: 'blind', describe: d, provision, retire };
    const err = await canaryJudge()
      .verify(await env.context(blind))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CapabilityMissingError);
    expect((err as CapabilityMissingError).retryable).toBe(false);
  });
});
