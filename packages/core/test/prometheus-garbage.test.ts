import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type PoolState,
  prometheusAnalysis,
  runGate,
  type Target,
  type VerifyContext,
} from '../src/index.js';

// A real HTTP server speaking Prometheus's query API, answering whatever body the test puts in `answer`:
// what a broken proxy, a misbehaving remote-read adapter or a hostile endpoint might send.
let answer: (now: number) => unknown = () => ({});
let server: http.Server;
let url = '';

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const time = Number(new URLSearchParams(body).get('time') ?? Date.now() / 1000);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer(time)));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const pool: PoolState = { name: 'canary', version: 'v2', replicas: 1, ready: 1, weight: 10, endpoints: [] };
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
const ctx: VerifyContext = {
  environment: 'production',
  version: 'v2',
  pools: [pool],
  endpoint: 'http://127.0.0.1:1',
  target,
};
const verifier = () =>
  prometheusAnalysis({
    url,
    metrics: [{ name: 'error_rate', query: 'errors{pool="{{pool}}"}', threshold: { max: 0.01 } }],
  });
const vector =
  (value: unknown, time: (now: number) => unknown = (now) => now) =>
  (now: number) => ({
    status: 'success',
    data: { resultType: 'vector', result: [{ metric: { pool: 'canary' }, value: [time(now), value] }] },
  });

describe('Prometheus verdicts from garbage', () => {
  it('passes a finite value with a fresh timestamp (the control case)', async () => {
    answer = vector('0.001');
    const r = await verifier().verify(ctx);
    expect(r.verdict).toBe('pass');
    expect(r.checks[0]!.observed).toBe(0.001);
  });

  it.each<[string, unknown]>([
    ['an empty string', ''],
    ['blanks', '   '],
    ['a hexadecimal 0x0', '0x0'],
    ['a binary 0b0', '0b0'],
    ['words', 'zero'],
    ['a JSON number instead of a string', 0],
    ['null', null],
    ['NaN', 'NaN'],
  ])('is inconclusive, never a pass, on %s as the value', async (_what, value) => {
    answer = vector(value);
    const r = await verifier().verify(ctx);
    expect(r.verdict).toBe('inconclusive');
    expect(r.checks[0]!.observed).toBeNull();
  });

  it.each<[string, (now: number) => unknown]>([
    ['a string timestamp', () => 'now'],
    ['a numeric-string timestamp', (now) => String(now)],
    ['no timestamp', () => null],
    ['a timestamp an hour old', (now) => now - 3600],
    ['a timestamp an hour in the future', (now) => now + 3600],
    ['a zero timestamp', () => 0],
  ])('is inconclusive, never a pass, on %s', async (_what, time) => {
    answer = vector('0', time);
    const r = await verifier().verify(ctx);
    expect(r.verdict).toBe('inconclusive');
    expect(r.checks[0]!.reason).toMatch(/^stale/);
  });

  it('ends a gate inconclusive, never pass, when every answer is garbage', async () => {
    answer = vector('');
    const r = await runGate('canary-10', [verifier()], ctx, {
      count: 3,
      intervalMs: 1,
      inconclusiveLimit: 5,
    });
    expect(r.verdict).toBe('inconclusive');
  });

  it('counts a result that is not a list as an error measurement, never a pass', async () => {
    answer = () => ({ status: 'success', data: { resultType: 'vector', result: '0' } });
    const r = await runGate('canary-10', [verifier()], ctx, {
      count: 2,
      intervalMs: 1,
      consecutiveErrorLimit: 1,
    });
    expect(r.verdict).toBe('error');
  });
});
