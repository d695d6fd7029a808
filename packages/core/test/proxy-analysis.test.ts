import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CapabilityMissingError,
  ConfigInvalidError,
  type LocalTarget,
  type PoolState,
  proxyAnalysis,
  runGate,
  type Target,
  type VerifyContext,
} from '../src/index.js';
import { LocalHarness } from './helpers/sample.js';

// The embedded local target runs real sample replicas behind its weighted proxy; the proxy's per-pool
// figures (requests, errors, latency samples) are what proxyAnalysis judges.
const h = new LocalHarness();
let target: LocalTarget;
let pools: Record<string, PoolState>;

const ctx = (t: Target, ...under: PoolState[]): VerifyContext => ({
  environment: 'production',
  version: under[0]?.version ?? 'v1',
  pools: under,
  endpoint: 'http://127.0.0.1:1',
  target: t,
});

async function send(url: string, n: number, concurrency = 6): Promise<void> {
  let left = n;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left-- > 0) await (await fetch(`${url}/api/v1/search?q=GraphBuilder`)).arrayBuffer();
    }),
  );
}

beforeAll(async () => {
  target = await h.target({
    command: LocalHarness.command(
      {},
      { v2: { args: ['--latency-ms', '80'] }, v3: { args: ['--error-rate', '0.5'] } },
    ),
  });
  const [stable, slow, flaky] = await Promise.all([
    target.provision({ pool: 'stable', version: 'v1', replicas: 1 }),
    target.provision({ pool: 'canary-slow', version: 'v2', replicas: 1 }),
    target.provision({ pool: 'canary-flaky', version: 'v3', replicas: 1 }),
  ]);
  pools = { stable: stable!, slow: slow!, flaky: flaky! };
  await target.route({ stable: 34, 'canary-slow': 33, 'canary-flaky': 33 });
  await send(await target.endpoint(), 120);
}, 60_000);
afterAll(async () => {
  const survivors = await h.cleanup();
  expect(survivors).toEqual([]);
});

describe('proxy analysis (target traffic figures)', () => {
  const judge = proxyAnalysis({ maxErrorRate: 0.05, maxP95LatencyMs: 50, minRequests: 20 });

  it('passes the stable pool on its own proxy figures', async () => {
    const result = await judge.verify(ctx(target, pools.stable!));
    expect(result.checks.map((c) => c.name)).toEqual([
      'requests[stable]',
      'error_rate[stable]',
      'p95_latency_ms[stable]',
    ]);
    expect(result.checks.filter((c) => c.verdict !== 'pass')).toEqual([]);
    expect(result.checks[0]!.observed as number).toBeGreaterThanOrEqual(20);
    expect(result.checks[1]!.observed).toBe(0);
  });

  it("fails a canary whose p95 latency doubles past 50 ms, while stable's figures stay its own", async () => {
    const result = await judge.verify(ctx(target, pools.slow!, pools.stable!));
    const p95 = result.checks.find((c) => c.name === 'p95_latency_ms[canary-slow]')!;
    expect(p95.verdict).toBe('fail');
    expect(p95.observed as number).toBeGreaterThan(50);
    expect(result.checks.find((c) => c.name === 'p95_latency_ms[stable]')!.verdict).toBe('pass');
    expect(result.verdict).toBe('fail');
  });

  it('fails a canary whose error rate is above maxErrorRate', async () => {
    const result = await judge.verify(ctx(target, pools.flaky!));
    const rate = result.checks.find((c) => c.name === 'error_rate[canary-flaky]')!;
    expect(rate.verdict).toBe('fail');
    expect(rate.observed as number).toBeCloseTo(0.5, 1);
    expect(rate.reason).toMatch(/\d+\/\d+ failed/);
  });

  it('is inconclusive, never a pass, with too few requests', async () => {
    await target.resetTraffic('stable');
    await (await fetch(`${await target.endpoint()}/health`)).arrayBuffer();
    const result = await runGate('canary', [judge], ctx(target, pools.stable!), { count: 1 });
    expect(result.verdict).toBe('inconclusive');
    const checks = result.measurements[0]!.checks;
    expect(checks.find((c) => c.name === 'requests[stable]')!.reason).toMatch(
      /^only \d requests; at least 20/,
    );
    expect(checks.find((c) => c.name === 'error_rate[stable]')).toMatchObject({
      verdict: 'inconclusive',
      observed: null,
    });
  });

  it('throws CapabilityMissingError for a target without traffic, and the gate ends at error at once', async () => {
    const bare: Target = {
      name: 'bare-lb',
      async describe() {
        return { pools: [] };
      },
      async provision({ pool, version, replicas }) {
        return { name: pool, version, replicas, ready: replicas, weight: 0, endpoints: [] };
      },
      async retire() {},
    };
    await expect(judge.verify(ctx(bare, pools.stable!))).rejects.toBeInstanceOf(CapabilityMissingError);
    const result = await runGate('canary', [judge], ctx(bare, pools.stable!), { count: 5, intervalMs: 10 });
    expect(result.verdict).toBe('error');
    expect(result.measurements).toHaveLength(1);
    expect(result.measurements[0]!.error?.code).toBe('CG_CAPABILITY_MISSING');
  });

  it.each([
    [{ maxErrorRate: 1.5 }, /maxErrorRate/],
    [{ maxP95LatencyMs: 0 }, /maxP95LatencyMs/],
    [{ minRequests: 0 }, /minRequests/],
    [{ pools: [''] }, /pools/],
  ])('rejects %o with ConfigInvalidError when made', (options, message) => {
    expect(() => proxyAnalysis(options)).toThrow(ConfigInvalidError);
    expect(() => proxyAnalysis(options)).toThrow(message);
  });
});
