import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigInvalidError,
  codegraphSlo,
  type PoolState,
  type PrometheusMetric,
  prometheusAnalysis,
  runGate,
  type Target,
  type VerifyContext,
} from '../src/index.js';
import { type RunningPrometheus, startPrometheus } from './helpers/prometheus.js';
import { type RunningSample, startSample, stopAllSamples } from './helpers/sample.js';

// One real Prometheus (1 s scrapes) watches three sample services, each labelled with its pool, and two
// small exporters whose values the tests control exactly.
let prom: RunningPrometheus;
let stable: RunningSample;
let canary: RunningSample;
let flaky: RunningSample;
const servers: http.Server[] = [];
let traffic: NodeJS.Timeout | undefined;

async function exporter(text: string): Promise<{ address: string; server: http.Server }> {
  const server = http.createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text),
  );
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
let leaving: http.Server;

const pool = (name: string, version: string): PoolState => ({
  name,
  version,
  replicas: 1,
  ready: 1,
  weight: 50,
  endpoints: [],
});
const target: Target = {
  name: 'fixed',
  async describe() {
    return { pools: [] };
  },
  async provision({ pool: p, version, replicas }) {
    return { name: p, version, replicas, ready: replicas, weight: 0, endpoints: [] };
  },
  async retire() {},
};
const ctx = (...pools: PoolState[]): VerifyContext => ({
  environment: 'production',
  version: pools[0]?.version ?? 'v2',
  pools,
  endpoint: 'http://127.0.0.1:1',
  target,
});

beforeAll(async () => {
  [stable, canary, flaky] = await Promise.all([
    startSample({ version: 'v1' }),
    startSample({ version: 'v2', args: ['--latency-ms', '80'] }),
    startSample({ version: 'v2', args: ['--error-rate', '0.2'] }),
  ]);
  const odd = await exporter(
    '# TYPE odd_ratio gauge\nodd_ratio NaN\n# TYPE odd_value gauge\nodd_value 0.5\n',
  );
  const gone = await exporter('# TYPE leaving_gauge gauge\nleaving_gauge 1\n');
  leaving = gone.server;
  const addr = (s: RunningSample) => `127.0.0.1:${s.port}`;
  prom = await startPrometheus([
    { address: addr(stable), labels: { pool: 'stable', version: 'v1' } },
    { address: addr(canary), labels: { pool: 'canary', version: 'v2' } },
    { address: addr(flaky), labels: { pool: 'flaky', version: 'v2' } },
    { address: odd.address, labels: { pool: 'odd' } },
    { address: gone.address, labels: { pool: 'leaving' } },
  ]);
  // Steady real traffic to each service for as long as the tests run.
  let busy = false;
  traffic = setInterval(async () => {
    if (busy) return;
    busy = true;
    await Promise.all(
      [stable, canary, flaky].map((s) =>
        fetch(`${s.url}/api/v1/search?q=GraphBuilder`).then(
          (r) => r.arrayBuffer(),
          () => undefined,
        ),
      ),
    );
    busy = false;
  }, 10);
  await prom.waitFor('count(up == 1) >= 5');
  // rate() needs two scrapes with traffic in the window, for every pool.
  await prom.waitFor(
    'count(sum by (pool) (rate(http_requests_total{route="/api/v1/search"}[15s])) > 0) >= 3',
  );
  await prom.waitFor('sum(rate(http_requests_total{pool="flaky",code="500"}[15s])) > 0');
}, 60_000);

afterAll(async () => {
  clearInterval(traffic);
  await prom?.stop();
  await stopAllSamples();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

const slo = () =>
  prometheusAnalysis({ url: prom.url, metrics: codegraphSlo({ window: '15s', minThroughputRps: 1 }) });
const one = (metric: PrometheusMetric, extra: { maxStalenessMs?: number } = {}) =>
  prometheusAnalysis({ url: prom.url, metrics: [metric], ...extra });

/** Measures until `done` holds (at most 20 s), returning the last result. */
async function until<T>(measure: () => Promise<T>, done: (r: T) => boolean): Promise<T> {
  const deadline = Date.now() + 20_000;
  let r = await measure();
  while (!done(r) && Date.now() < deadline) {
    await new Promise((ok) => setTimeout(ok, 500));
    r = await measure();
  }
  return r;
}

describe('Prometheus analysis', () => {
  it('passes the stable pool on the CodeGraph SLO preset, judged on its own traffic', async () => {
    const result = await slo().verify(ctx(pool('stable', 'v1')));
    expect(result.checks.filter((c) => c.verdict !== 'pass')).toEqual([]);
    expect(result.checks.map((c) => c.name)).toEqual([
      'p95_latency_ms[stable]',
      'throughput_rps[stable]',
      'cache_hit_ratio[stable]',
      'memory_bytes[stable]',
      'error_rate[stable]',
    ]);
    for (const c of result.checks) {
      expect(c.query).toContain('pool="stable"');
      expect(c.query).not.toContain('{{');
      expect(typeof c.observed).toBe('number');
    }
    expect(result.verdict).toBe('pass');
  });

  it("fails a canary whose p95 latency breaks 50 ms, while the stable pool's traffic does not hide it", async () => {
    // Limits respect sample size: the p95 fails once 100 requests of the window say so (inconclusive before).
    const result = await until(
      () => slo().verify(ctx(pool('canary', 'v2'), pool('stable', 'v1'))),
      (r) => r.checks.find((c) => c.name === 'p95_latency_ms[canary]')!.verdict !== 'inconclusive',
    );
    const p95 = result.checks.find((c) => c.name === 'p95_latency_ms[canary]')!;
    expect(p95.verdict).toBe('fail');
    expect(p95.samples).toBeGreaterThanOrEqual(100);
    expect(p95.observed as number).toBeGreaterThan(50);
    expect(result.checks.find((c) => c.name === 'p95_latency_ms[stable]')!.verdict).toBe('pass');
    expect(result.verdict).toBe('fail');
  });

  it('fails a canary whose 5xx error rate is above 5%', async () => {
    // The sequential test fails the rate once the requests behind it show it is past 5 %.
    const result = await until(
      () => slo().verify(ctx(pool('flaky', 'v2'))),
      (r) => r.checks.find((c) => c.name === 'error_rate[flaky]')!.verdict === 'fail',
    );
    const errors = result.checks.find((c) => c.name === 'error_rate[flaky]')!;
    expect(errors.verdict).toBe('fail');
    expect(errors.reason).toMatch(/lower bound .* > 0.05/);
    expect(errors.observed as number).toBeGreaterThan(0.05);
  });

  it('is inconclusive, never a pass, on an empty result', async () => {
    const result = await slo().verify(ctx(pool('ghost', 'v9')));
    expect(result.verdict).toBe('inconclusive');
    for (const c of result.checks) {
      expect(c.verdict).toBe('inconclusive');
      expect(c.observed).toBeNull();
    }
    expect(result.checks[1]!.reason).toMatch(/empty result/);
  });

  it('is inconclusive, never a pass, on NaN', async () => {
    const result = await one({
      name: 'ratio',
      query: 'odd_ratio{pool="odd"}',
      threshold: { min: 0.5 },
    }).verify(ctx(pool('odd', 'v1')));
    expect(result.verdict).toBe('inconclusive');
    expect(result.checks[0]!.reason).toMatch(/^NaN/);
  });

  it('judges a range query on its worst point', async () => {
    const range = { windowMs: 5_000, stepMs: 1_000 };
    const ok = await one({
      name: 'v',
      query: 'odd_value{pool="{{pool}}"}',
      threshold: { max: 1 },
      range,
    }).verify(ctx(pool('odd', 'v1')));
    expect(ok.checks[0]).toMatchObject({ verdict: 'pass', observed: 0.5, name: 'v[odd]' });
    const bad = await one({
      name: 'v',
      query: 'odd_value{pool="{{pool}}"}',
      threshold: { max: 0.4 },
      range,
    }).verify(ctx(pool('odd', 'v1')));
    expect(bad.checks[0]).toMatchObject({ verdict: 'fail', observed: 0.5 });
  });

  it('escapes context values, so a strange pool name cannot change the query', async () => {
    const result = await one({ name: 'up', query: 'up{pool="{{pool}}"}', threshold: { min: 1 } }).verify(
      ctx(pool('x"} or up{job="codegraph', 'v1')),
    );
    expect(result.checks[0]!.query).toBe('up{pool="x\\x22} or up{job=\\x22codegraph"}');
    // Prometheus itself parses it as one label value: no series, not a query error.
    expect(result.verdict).toBe('inconclusive');
    const single = await one({ name: 'up', query: "up{pool='{{pool}}'}", threshold: { min: 1 } }).verify(
      ctx(pool("x'} or up{job='codegraph", 'v1')),
    );
    expect(single.checks[0]!.query).toBe("up{pool='x\\x27} or up{job=\\x27codegraph'}");
    expect(single.verdict).toBe('inconclusive');
  });

  it('ends the gate at error at once on a query Prometheus rejects', async () => {
    const bad = one({ name: 'broken', query: 'sum(rate(http_requests_total[5x]))', threshold: { max: 1 } });
    const result = await runGate('canary', [bad], ctx(pool('canary', 'v2')), { count: 3, intervalMs: 50 });
    expect(result.verdict).toBe('error');
    expect(result.measurements).toHaveLength(1);
    expect(result.measurements[0]!.error).toMatchObject({ code: 'CG_VERIFIER_FAILED', retryable: false });
    expect(result.measurements[0]!.error?.message).toMatch(/rejected the query \(bad_data\)/);
  });

  it('turns inconclusive when the newest sample of a range is stale', async () => {
    const metric = {
      name: 'g',
      query: 'leaving_gauge{pool="leaving"}',
      threshold: { max: 1 },
      range: { windowMs: 60_000 },
    };
    const verifier = one(metric, { maxStalenessMs: 3_000 });
    expect((await verifier.verify(ctx(pool('leaving', 'v1')))).verdict).toBe('pass');
    leaving.closeAllConnections();
    leaving.close();
    const deadline = Date.now() + 20_000;
    let last = await verifier.verify(ctx(pool('leaving', 'v1')));
    while (last.verdict === 'pass' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      last = await verifier.verify(ctx(pool('leaving', 'v1')));
    }
    expect(last.verdict).toBe('inconclusive');
    expect(last.checks[0]!.reason).toMatch(/^stale: newest sample is \d+ s old/);
  });

  it("never fails a healthy version for the seeds' whole-service 10,000 rps floor: scaled by traffic share, capped by the offered load", async () => {
    const full = { ...pool('stable', 'v1'), weight: 100 };
    // Here each sample service is a service of its own: the offered load is what reaches `stable`.
    const preset = prometheusAnalysis({
      url: prom.url,
      metrics: codegraphSlo({ window: '15s', serviceSelector: 'pool="stable"' }),
    });
    const after = (await preset.verify(ctx(full))).checks.find((c) => c.name === 'throughput_rps[stable]')!;
    expect(after.verdict).toBe('pass');
    expect(after.reason).toMatch(/scaled by the pool's traffic share 100 %, capped at 80 % of the offered/);
    const small = { ...pool('stable', 'v1'), weight: 5 };
    const canaryStep = (await preset.verify(ctx(small))).checks.find(
      (c) => c.name === 'throughput_rps[stable]',
    )!;
    expect(canaryStep.verdict).toBe('pass');
    expect(canaryStep.reason).toMatch(/traffic share 5 %/);
  });

  it.each<[string, () => unknown]>([
    [
      'an unknown placeholder',
      () => one({ name: 'a', query: 'up{pool="{{canary}}"}', threshold: { max: 1 } }),
    ],
    ['an unclosed placeholder', () => one({ name: 'a', query: 'up{pool="{{pool"}', threshold: { max: 1 } })],
    ['unbalanced parentheses', () => one({ name: 'a', query: 'sum(rate(up[1m])', threshold: { max: 1 } })],
    ['an unclosed string', () => one({ name: 'a', query: 'up{pool="x}', threshold: { max: 1 } })],
    ['no threshold', () => one({ name: 'a', query: 'up', threshold: {} })],
    ['a NaN threshold', () => one({ name: 'a', query: 'up', threshold: { max: Number.NaN } })],
    ['min above max', () => one({ name: 'a', query: 'up', threshold: { min: 2, max: 1 } })],
    [
      'a bad URL',
      () =>
        prometheusAnalysis({
          url: 'prometheus:9090',
          metrics: [{ name: 'a', query: 'up', threshold: { max: 1 } }],
        }),
    ],
    ['no metrics', () => prometheusAnalysis({ url: 'http://127.0.0.1:9090', metrics: [] })],
    ['a bad SLO window', () => codegraphSlo({ window: '5 minutes' })],
  ])('rejects %s with ConfigInvalidError when the verifier is made', (_what, make) => {
    expect(make).toThrow(ConfigInvalidError);
  });

  // Last: it stops the shared Prometheus.
  it('counts Prometheus down as errors, never a pass, and keeps its credentials out of them', async () => {
    const verifier = prometheusAnalysis({
      url: prom.url,
      headers: { authorization: 'Bearer prom-secret-91c2' },
      metrics: codegraphSlo({ window: '15s', minThroughputRps: 1 }),
    });
    expect((await verifier.verify(ctx(pool('stable', 'v1')))).verdict).toBe('pass');
    await prom.stop();
    const result = await runGate('canary', [verifier], ctx(pool('stable', 'v1')), {
      count: 5,
      intervalMs: 20,
      consecutiveErrorLimit: 1,
    });
    expect(result.verdict).toBe('error');
    expect(result.measurements).toHaveLength(2);
    expect(result.measurements[1]!.error).toMatchObject({ code: 'CG_VERIFIER_FAILED', retryable: true });
    expect(result.measurements[1]!.error?.message).toMatch(/unreachable/);
    expect(JSON.stringify(result)).not.toContain('prom-secret-91c2');
  });
});
