import { describe, expect, it } from 'vitest';
import {
  type Check,
  ConfigInvalidError,
  type MeasuredCheck,
  type PoolTraffic,
  proxyAnalysis,
  runGate,
  type Target,
  type Verifier,
  type VerifyContext,
} from '../src/index.js';

// Verifiers here are small in-house plugins that return scripted checks: the gate's own rules
// (outcomes, policies, reasons, measurement hooks) are what is under test.
const target: Target = {
  name: 'fixed',
  async describe() {
    return { pools: [] };
  },
  async provision({ pool, version, replicas }) {
    return { name: pool, version, replicas, ready: replicas, weight: 0, endpoints: [] };
  },
  async retire() {},
};
const ctx = (t: Target = target): VerifyContext => ({
  environment: 'production',
  version: 'v2',
  pools: [{ name: 'v2', version: 'v2', replicas: 1, ready: 1, weight: 10, endpoints: [] }],
  endpoint: 'http://127.0.0.1:1',
  target: t,
});
const check = (name: string, verdict: Check['verdict'], observed: number | null = 1): Check => ({
  name,
  verdict,
  observed,
  threshold: '<= 0.02',
  samples: 400,
  reason: `${name} is ${verdict}`,
});
function scripted(name: string, steps: Check[][]): Verifier {
  let i = 0;
  return {
    name,
    async verify() {
      const checks = steps[Math.min(i++, steps.length - 1)]!;
      const verdict = checks.some((c) => c.verdict === 'fail')
        ? 'fail'
        : checks.some((c) => c.verdict === 'inconclusive')
          ? 'inconclusive'
          : 'pass';
      return { verdict, checks };
    },
  };
}

describe('gate outcomes and policies', () => {
  it('names the failed check, with its value, limit and sample size, never an inconclusive neighbour', async () => {
    const v = scripted('proxy', [
      [check('requests[v2]', 'inconclusive', null), check('error_rate[v2]', 'fail', 0.06)],
    ]);
    const r = await runGate('canary-10', [v], ctx());
    expect(r.verdict).toBe('fail');
    expect(r.outcome).toBe('fail');
    expect(r.reason).toContain('error_rate[v2] fail (value 0.06, limit <= 0.02, n=400)');
    expect(r.reason).not.toContain('requests[v2]');
  });

  it('keeps an inconclusive gate inconclusive by default: no data is never a pass', async () => {
    const v = scripted('judge', [[check('judge.samples', 'inconclusive', null)]]);
    const r = await runGate('canary-10', [v], ctx(), { count: 3, intervalMs: 0, inconclusiveLimit: 5 });
    expect(r.verdict).toBe('inconclusive');
    expect(r.outcome).toBe('inconclusive');
    expect(r.pause).toBeUndefined();
  });

  it("passes after an inconclusive end only when every verifier measured data (onInconclusive: 'pass-after')", async () => {
    const some = scripted('judge', [[check('x', 'pass')], [check('x', 'inconclusive', null)]]);
    const r = await runGate('canary-10', [some], ctx(), {
      count: 3,
      intervalMs: 0,
      consecutiveSuccessLimit: 3,
      onInconclusive: 'pass-after',
    });
    expect(r.outcome).toBe('inconclusive');
    expect(r.verdict).toBe('pass');
    expect(r.reason).toMatch(/pass-after/);
    const none = scripted('judge', [[check('x', 'inconclusive', null)]]);
    const r2 = await runGate('canary-10', [none], ctx(), {
      count: 3,
      intervalMs: 0,
      inconclusiveLimit: 5,
      onInconclusive: 'pass-after',
    });
    expect(r2.verdict).toBe('inconclusive');
  });

  it("holds a failed gate for an operator with onFail: 'pause', and an inconclusive one with onInconclusive: 'pause'", async () => {
    const failing = scripted('judge', [[check('errors', 'fail')]]);
    const r = await runGate('canary-10', [failing], ctx(), { onFail: 'pause' });
    expect(r).toMatchObject({ verdict: 'fail', outcome: 'fail', pause: true });
    const unsure = scripted('judge', [[check('errors', 'inconclusive', null)]]);
    const r2 = await runGate('canary-10', [unsure], ctx(), { onInconclusive: 'pause' });
    expect(r2).toMatchObject({ verdict: 'inconclusive', outcome: 'inconclusive', pause: true });
  });

  it('reports every measured check as it is taken, with the query behind it', async () => {
    const seen: MeasuredCheck[] = [];
    const v = scripted('proxy', [[{ ...check('error_rate[v2]', 'pass', 0.001), query: 'traffic(v2)' }]]);
    await runGate(
      'canary-10',
      [v],
      ctx(),
      { count: 3, intervalMs: 0 },
      { onMeasured: (m) => void seen.push(m) },
    );
    expect(seen).toHaveLength(3);
    expect(seen[2]).toMatchObject({
      gate: 'canary-10',
      verifier: 'proxy',
      round: 2,
      metric: 'error_rate[v2]',
      pool: 'v2',
      value: 0.001,
      limit: '<= 0.02',
      verdict: 'pass',
      query: 'traffic(v2)',
      samples: 400,
    });
  });

  it('refuses unknown policies before measuring', async () => {
    const v = scripted('judge', [[check('x', 'pass')]]);
    await expect(runGate('g', [v], ctx(), { onFail: 'ignore' as 'abort' })).rejects.toThrow(
      ConfigInvalidError,
    );
    await expect(runGate('g', [v], ctx(), { onInconclusive: 'pass' as 'fail' })).rejects.toThrow(
      ConfigInvalidError,
    );
  });
});

describe('proxy analysis limits respect sample size', () => {
  const withTraffic = (requests: number, errors: number, latencyMs: number[] = [5]): Target => ({
    ...target,
    async traffic(pool: string): Promise<PoolTraffic> {
      return { pool, requests, errors, latencyMs, since: '2026-01-01T00:00:00Z' };
    },
  });

  it('does not fail a 2 % limit on 1 error in 20 requests (the A/A coin toss)', async () => {
    const r = await proxyAnalysis({ maxErrorRate: 0.02 }).verify(ctx(withTraffic(20, 1)));
    const c = r.checks.find((x) => x.name === 'error_rate[v2]')!;
    expect(c.verdict).toBe('pass');
    expect(c.observed).toBe(0.05);
    expect(r.verdict).toBe('pass');
  });

  it('fails a canary with 5 % errors against a 2 % limit once a few hundred requests say so', async () => {
    const r = await proxyAnalysis({ maxErrorRate: 0.02 }).verify(ctx(withTraffic(600, 30)));
    const c = r.checks.find((x) => x.name === 'error_rate[v2]')!;
    expect(c.verdict).toBe('fail');
    expect(c.reason).toMatch(/lower bound 0\.0\d+ is above 0.02/);
  });

  it('fails a p95 limit only when clearly more than 5 % of samples are slower', async () => {
    const some = Array.from({ length: 200 }, (_, i) => (i < 14 ? 80 : 10)); // 7 % slow: not enough evidence
    const many = Array.from({ length: 200 }, (_, i) => (i < 40 ? 80 : 10)); // 20 % slow
    const a = await proxyAnalysis().verify(ctx(withTraffic(200, 0, some)));
    const b = await proxyAnalysis().verify(ctx(withTraffic(200, 0, many)));
    expect(a.checks.find((x) => x.name === 'p95_latency_ms[v2]')!.verdict).toBe('pass');
    expect(b.checks.find((x) => x.name === 'p95_latency_ms[v2]')!.verdict).toBe('fail');
  });
});
