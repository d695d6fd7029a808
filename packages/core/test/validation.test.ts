import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Check,
  httpValidation,
  runGate,
  type Target,
  type ValidationOptions,
  type VerifyContext,
  validateDeployment,
} from '../src/index.js';
import { type RunningSample, startSample, stopAllSamples } from './helpers/sample.js';
import { makeCertificate, type TestCertificate } from './helpers/tls.js';

const KEY = 'cg-test-key-7f3a9c2e11';
const only = (...on: Array<keyof NonNullable<ValidationOptions['checks']>>): ValidationOptions['checks'] => {
  const all = [
    'health',
    'auth',
    'http2',
    'graphql',
    'metrics',
    'latency',
    'concurrency',
    'securityHeaders',
  ] as const;
  return Object.fromEntries(all.map((k) => [k, on.includes(k)]));
};
const byName = (checks: Check[], name: string) => {
  const c = checks.find((x) => x.name === name);
  if (!c) throw new Error(`no check ${name} in ${checks.map((x) => x.name).join(', ')}`);
  return c;
};

let tls: TestCertificate;
let healthy: RunningSample;
const servers: Array<http.Server | http2.Http2Server> = [];

async function listen<T extends http.Server | https.Server | http2.Http2Server>(server: T): Promise<number> {
  servers.push(server as http.Server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  tls = makeCertificate();
  healthy = await startSample({ version: 'v2.0.0', args: ['--api-key', KEY] });
});
afterAll(async () => {
  await stopAllSamples();
  for (const s of servers) {
    (s as http.Server).closeAllConnections?.();
    s.close();
  }
  tls?.remove();
});

const sampleOptions = (url: string): ValidationOptions => ({
  baseUrl: url,
  apiKey: KEY,
  authPath: '/api/v1/protected',
  expectedVersion: 'v2.0.0',
  timeoutSecs: 5,
  loadRequests: 100,
});

describe('deployment validation suite (validate.sh)', () => {
  it('passes every check against a healthy service that runs the expected version', async () => {
    const result = await validateDeployment({ ...sampleOptions(healthy.url), checks: { http2: false } });
    const failed = result.checks.filter((c) => c.verdict !== 'pass');
    expect(failed).toEqual([]);
    expect(result.verdict).toBe('pass');
    const names = result.checks.map((c) => c.name);
    for (const n of [
      'health.status',
      'health.body',
      'health.version',
      'auth.anonymous',
      'auth.api_key',
      'graphql',
    ]) {
      expect(names).toContain(n);
    }
    expect(names).toEqual(
      expect.arrayContaining(['metrics.parse', 'metrics.http_requests_total', 'latency.p95']),
    );
    expect(names).toEqual(
      expect.arrayContaining([
        'concurrency.errors',
        'concurrency.throughput_rps',
        'header.strict-transport-security',
      ]),
    );
    for (const c of result.checks) {
      expect(c.reason.length).toBeGreaterThan(0);
      expect(c).toHaveProperty('observed');
      expect(c).toHaveProperty('threshold');
    }
    expect(byName(result.checks, 'concurrency.throughput_rps').observed).toBeGreaterThan(0);
  });

  it('rejects with CG_ABORTED when its signal aborts mid-run', async () => {
    const controller = new AbortController();
    const run = validateDeployment({
      ...sampleOptions(healthy.url),
      loadRequests: 1_000_000,
      concurrentRequests: 2,
      signal: controller.signal,
      checks: only('health', 'concurrency'),
    });
    setTimeout(() => controller.abort(), 300);
    await expect(run).rejects.toMatchObject({ code: 'CG_ABORTED' });
  });

  it('fails health.version when the service runs another version', async () => {
    const result = await validateDeployment({
      ...sampleOptions(healthy.url),
      expectedVersion: 'v2.0.1',
      checks: only('health'),
    });
    expect(result.verdict).toBe('fail');
    expect(byName(result.checks, 'health.version')).toMatchObject({
      verdict: 'fail',
      observed: 'v2.0.0',
      threshold: 'v2.0.1',
    });
  });

  it('fails health.body when /health answers 200 but says it is not healthy, or not in JSON', async () => {
    const degraded = await listen(
      http.createServer((_req, res) =>
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end('{"status":"degraded","version":"v2.0.0"}'),
      ),
    );
    const text = await listen(http.createServer((_req, res) => res.writeHead(200).end('OK')));
    const a = await validateDeployment({
      baseUrl: `http://127.0.0.1:${degraded}`,
      expectedVersion: 'v2.0.0',
      checks: only('health'),
    });
    expect(byName(a.checks, 'health.body')).toMatchObject({ verdict: 'fail', observed: 'degraded' });
    expect(byName(a.checks, 'health.version').verdict).toBe('pass');
    const b = await validateDeployment({ baseUrl: `http://127.0.0.1:${text}`, checks: only('health') });
    expect(byName(b.checks, 'health.body')).toMatchObject({ verdict: 'fail', observed: 'not JSON' });
  });

  it('fails health.status and runs nothing else when the service is down', async () => {
    const down = await startSample({ version: 'v2.0.0' });
    await down.stop();
    const result = await validateDeployment({ ...sampleOptions(down.url), timeoutSecs: 1 });
    expect(result.verdict).toBe('fail');
    expect(result.checks.map((c) => c.name)).toEqual(['health.status']);
    expect(result.checks[0]!.reason).toMatch(/not healthy within TIMEOUT_SECS=1/);
  });

  it('fails auth.anonymous when the "protected" endpoint answers without a key', async () => {
    const result = await validateDeployment({
      ...sampleOptions(healthy.url),
      authPath: '/health',
      checks: only('auth'),
    });
    expect(byName(result.checks, 'auth.anonymous')).toMatchObject({ verdict: 'fail', observed: 200 });
  });

  it('fails auth.api_key when the service rejects the key', async () => {
    const result = await validateDeployment({
      ...sampleOptions(healthy.url),
      apiKey: 'not-the-key',
      checks: only('auth'),
    });
    expect(byName(result.checks, 'auth.anonymous').verdict).toBe('pass');
    expect(byName(result.checks, 'auth.api_key')).toMatchObject({ verdict: 'fail', observed: 403 });
  });

  it('fails graphql when the query answers with errors', async () => {
    const result = await validateDeployment({
      ...sampleOptions(healthy.url),
      graphqlQuery: '{ nosuchfield }',
      checks: only('graphql'),
    });
    const c = byName(result.checks, 'graphql');
    expect(c.verdict).toBe('fail');
    expect(c.reason).toMatch(/Cannot query field "nosuchfield"/);
  });

  it('fails metrics.<name> when /metrics lacks an expected metric', async () => {
    const result = await validateDeployment({
      ...sampleOptions(healthy.url),
      expectedMetrics: ['http_requests_total', 'codegraph_vector_index_size'],
      checks: only('metrics'),
    });
    expect(byName(result.checks, 'metrics.parse').verdict).toBe('pass');
    expect(byName(result.checks, 'metrics.http_requests_total').verdict).toBe('pass');
    expect(byName(result.checks, 'metrics.codegraph_vector_index_size')).toMatchObject({
      verdict: 'fail',
      observed: false,
    });
  });

  it('fails metrics.parse when /metrics is not Prometheus text', async () => {
    const port = await listen(
      http.createServer((_req, res) =>
        res.writeHead(200, { 'content-type': 'text/plain' }).end('up{job="x" 1\n'),
      ),
    );
    const result = await validateDeployment({ baseUrl: `http://127.0.0.1:${port}`, checks: only('metrics') });
    expect(byName(result.checks, 'metrics.parse')).toMatchObject({ verdict: 'fail', observed: 'unparsable' });
  });

  it('fails the latency percentiles when the endpoint is slower than MAX_RESPONSE_TIME_MS', async () => {
    const slow = await startSample({ version: 'v2.0.0', args: ['--latency-ms', '60'] });
    try {
      const result = await validateDeployment({
        ...sampleOptions(slow.url),
        maxResponseTimeMs: 50,
        latencySamples: 5,
        checks: only('latency'),
      });
      for (const p of ['latency.p50', 'latency.p95', 'latency.p99']) {
        const c = byName(result.checks, p);
        expect(c.verdict).toBe('fail');
        expect(c.observed as number).toBeGreaterThan(50);
      }
      const fast = await validateDeployment({
        ...sampleOptions(slow.url),
        maxResponseTimeMs: 1000,
        latencySamples: 5,
        checks: only('latency'),
      });
      expect(fast.verdict).toBe('pass');
    } finally {
      await slow.stop();
    }
  });

  it('fails concurrency.errors when the service answers 500 under concurrent load', async () => {
    const flaky = await startSample({ version: 'v2.0.0', args: ['--error-rate', '0.1'] });
    try {
      const result = await validateDeployment({
        ...sampleOptions(flaky.url),
        loadPath: '/api/v1/search?q=GraphBuilder',
        concurrentRequests: 20,
        loadRequests: 200,
        checks: only('concurrency'),
      });
      const c = byName(result.checks, 'concurrency.errors');
      expect(c.verdict).toBe('fail');
      expect(c.observed).toBe(20);
      expect(c.reason).toMatch(/20x 500/);
      expect(byName(result.checks, 'concurrency.throughput_rps').verdict).toBe('pass');
    } finally {
      await flaky.stop();
    }
  });

  it('fails concurrency.throughput_rps below minThroughputRps', async () => {
    const slow = await startSample({ version: 'v2.0.0', args: ['--latency-ms', '50'] });
    try {
      const result = await validateDeployment({
        ...sampleOptions(slow.url),
        concurrentRequests: 2,
        loadRequests: 10,
        minThroughputRps: 1000,
        checks: only('concurrency'),
      });
      const c = byName(result.checks, 'concurrency.throughput_rps');
      expect(c.verdict).toBe('fail');
      expect(c.observed as number).toBeLessThan(100);
    } finally {
      await slow.stop();
    }
  });
});

describe('HTTP/2', () => {
  it('passes when the service negotiates h2 by ALPN over TLS (and the suite runs over TLS)', async () => {
    const svc = await startSample({
      version: 'v2.0.0',
      args: ['--tls-cert', tls.certPath, '--tls-key', tls.keyPath, '--api-key', KEY],
    });
    try {
      const result = await validateDeployment({
        ...sampleOptions(svc.url),
        ca: tls.cert,
        checks: only('health', 'auth', 'http2', 'graphql', 'latency', 'concurrency'),
      });
      expect(byName(result.checks, 'http2')).toMatchObject({
        verdict: 'pass',
        observed: 'h2',
        threshold: 'h2',
      });
      expect(byName(result.checks, 'concurrency.errors')).toMatchObject({ verdict: 'pass', observed: 0 });
      expect(result.checks.filter((c) => c.verdict !== 'pass')).toEqual([]);
    } finally {
      await svc.stop();
    }
  });

  it('fails when a TLS server only speaks HTTP/1.1', async () => {
    const port = await listen(
      https.createServer({ cert: tls.cert, key: tls.key }, (_req, res) => res.end('{"status":"healthy"}')),
    );
    const result = await validateDeployment({
      baseUrl: `https://127.0.0.1:${port}`,
      ca: tls.cert,
      checks: only('http2'),
    });
    expect(byName(result.checks, 'http2')).toMatchObject({ verdict: 'fail', observed: 'http/1.1' });
  });

  it('passes h2c with prior knowledge where configured, and fails h2c against an HTTP/1 server', async () => {
    const port = await listen(
      http2.createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"status":"healthy"}');
      }),
    );
    const ok = await validateDeployment({
      baseUrl: `http://127.0.0.1:${port}`,
      h2c: true,
      checks: only('http2'),
    });
    expect(byName(ok.checks, 'http2')).toMatchObject({ verdict: 'pass', observed: 'h2c' });
    const no = await validateDeployment({ ...sampleOptions(healthy.url), h2c: true, checks: only('http2') });
    expect(byName(no.checks, 'http2')).toMatchObject({ verdict: 'fail', observed: null });
  });

  it('fails a forced HTTP/2 check over plain http without h2c', async () => {
    const result = await validateDeployment({
      ...sampleOptions(healthy.url),
      checks: { ...only(), http2: true },
    });
    expect(byName(result.checks, 'http2').reason).toMatch(/needs https: \(ALPN\) or h2c/);
    expect(result.verdict).toBe('fail');
  });
});

describe('httpValidation verifier', () => {
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
  const ctx = (version: string, signal?: AbortSignal): VerifyContext => ({
    environment: 'staging',
    version,
    pools: [],
    endpoint: healthy.url,
    target,
    signal,
  });
  const suite = httpValidation({
    apiKey: KEY,
    authPath: '/api/v1/protected',
    loadRequests: 50,
    timeoutSecs: 2,
  });

  it('judges ctx.endpoint against ctx.version inside a gate', async () => {
    const pass = await runGate('post-deploy', [suite], ctx('v2.0.0'), { count: 2, intervalMs: 10 });
    expect(pass.verdict).toBe('pass');
    const wrong = await runGate('post-deploy', [suite], ctx('v3.0.0'));
    expect(wrong.verdict).toBe('fail');
    expect(wrong.reason).toMatch(
      /health.version fail \(value v2.0.0, limit v3.0.0\): runs v2.0.0, expected v3.0.0/,
    );
  });

  it('stops when the gate is aborted', async () => {
    const controller = new AbortController();
    const slowSuite = httpValidation({
      loadRequests: 100_000,
      concurrentRequests: 2,
      checks: only('concurrency'),
    });
    const gate = runGate('post-deploy', [slowSuite], ctx('v2.0.0', controller.signal));
    setTimeout(() => controller.abort(), 300);
    await expect(gate).rejects.toMatchObject({ code: 'CG_ABORTED' });
  });
});
