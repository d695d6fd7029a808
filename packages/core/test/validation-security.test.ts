import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Check,
  ConfigInvalidError,
  fromEnv,
  httpValidation,
  type Logger,
  owaspSecureHeaders,
  type ValidationOptions,
  validateDeployment,
} from '../src/index.js';
import { startSample, stopAllSamples } from './helpers/sample.js';

const KEY = 'cg-secret-5be1d0c4f2a8';
const headersOnly = {
  checks: { health: false, graphql: false, metrics: false, latency: false, concurrency: false },
};
const byName = (checks: Check[], name: string) => checks.find((c) => c.name === name);

const servers: http.Server[] = [];
let hits = 0;
async function serve(handler: http.RequestListener): Promise<string> {
  const server = http.createServer((req, res) => {
    hits++;
    handler(req, res);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
afterAll(async () => {
  await stopAllSamples();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

describe('security header compliance', () => {
  let base: string;
  beforeAll(async () => {
    base = (await startSample({ version: 'v1' })).url;
  });

  it('passes every OWASP rule on the sample service', async () => {
    const result = await validateDeployment({ baseUrl: base, ...headersOnly });
    expect(result.checks.map((c) => c.name)).toEqual(owaspSecureHeaders.map((r) => `header.${r.name}`));
    expect(result.checks.filter((c) => c.verdict !== 'pass')).toEqual([]);
  });

  // Each header the sample service can drop (`--missing-headers`) fails its own rule, and only that one.
  it.each([
    ['strict-transport-security', 'strict-transport-security'],
    ['x-content-type-options', 'x-content-type-options'],
    ['content-security-policy', 'content-security-policy'],
    ['referrer-policy', 'referrer-policy'],
    ['permissions-policy', 'permissions-policy'],
    ['cross-origin-opener-policy', 'cross-origin-opener-policy'],
    ['cross-origin-resource-policy', 'cross-origin-resource-policy'],
  ])('fails header.%s when the service omits %s', async (rule, missing) => {
    const svc = await startSample({ version: 'v1', args: ['--missing-headers', missing] });
    try {
      const result = await validateDeployment({ baseUrl: svc.url, ...headersOnly });
      const failed = result.checks.filter((c) => c.verdict === 'fail');
      expect(failed.map((c) => c.name)).toEqual([`header.${rule}`]);
      expect(failed[0]).toMatchObject({ observed: null, reason: 'missing' });
      expect(result.verdict).toBe('fail');
    } finally {
      await svc.stop();
    }
  });

  it('accepts CSP frame-ancestors as frame protection, and fails when neither it nor X-Frame-Options is sent', async () => {
    const both = await startSample({ version: 'v1', args: ['--missing-headers', 'x-frame-options'] });
    const none = await startSample({
      version: 'v1',
      args: ['--missing-headers', 'x-frame-options,content-security-policy'],
    });
    try {
      const viaCsp = await validateDeployment({ baseUrl: both.url, ...headersOnly });
      expect(byName(viaCsp.checks, 'header.frame-ancestors')).toMatchObject({
        verdict: 'pass',
        observed: "frame-ancestors 'none'",
      });
      const neither = await validateDeployment({ baseUrl: none.url, ...headersOnly });
      expect(byName(neither.checks, 'header.frame-ancestors')?.verdict).toBe('fail');
    } finally {
      await Promise.all([both.stop(), none.stop()]);
    }
  });

  it('fails weak values and headers OWASP says to remove', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, {
        'strict-transport-security': 'max-age=300',
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'ALLOW-FROM https://evil.example',
        'content-security-policy': "default-src 'self'",
        'referrer-policy': 'unsafe-url',
        'permissions-policy': 'camera=()',
        'cross-origin-opener-policy': 'unsafe-none',
        'cross-origin-resource-policy': 'cross-origin',
        'x-permitted-cross-domain-policies': 'all',
        'x-xss-protection': '1; mode=block',
        'x-powered-by': 'Express',
        server: 'nginx/1.25.3',
      });
      res.end('{"status":"healthy"}');
    });
    const result = await validateDeployment({ baseUrl: url, ...headersOnly });
    const failed = result.checks.filter((c) => c.verdict === 'fail').map((c) => c.name);
    expect(failed.sort()).toEqual(
      [
        'strict-transport-security',
        'frame-ancestors',
        'referrer-policy',
        'cross-origin-opener-policy',
        'cross-origin-resource-policy',
        'x-permitted-cross-domain-policies',
        'x-xss-protection',
        'x-powered-by',
        'server',
      ]
        .map((n) => `header.${n}`)
        .sort(),
    );
    expect(byName(result.checks, 'header.strict-transport-security')).toMatchObject({
      observed: 'max-age=300',
      threshold: 'max-age >= 31536000',
    });
  });
});

describe('secrets', () => {
  it('never shows the API key in checks, errors or logs, even when the service echoes it', async () => {
    // A hostile service that reflects the Authorization header everywhere it can.
    const url = await serve((req, res) => {
      const auth = String(req.headers.authorization ?? '');
      res.setHeader('referrer-policy', auth);
      res.setHeader('x-powered-by', auth);
      if (req.url === '/graphql') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ message: `bad token ${auth}` }] }));
        return;
      }
      if (req.url === '/protected') {
        res.writeHead(auth ? 500 : 401).end(auth);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: `weird ${auth}`, version: auth }));
    });
    const lines: string[] = [];
    const logger: Logger = {
      debug: (m, f) => lines.push(m + JSON.stringify(f ?? {})),
      info: (m, f) => lines.push(m + JSON.stringify(f ?? {})),
      warn: (m, f) => lines.push(m + JSON.stringify(f ?? {})),
      error: (m, f) => lines.push(m + JSON.stringify(f ?? {})),
    };
    const result = await validateDeployment({
      baseUrl: url,
      apiKey: KEY,
      authPath: '/protected',
      expectedVersion: 'v1',
      verbose: true,
      logger,
      checks: { metrics: false, latency: false, concurrency: false },
    });
    expect(result.verdict).toBe('fail');
    const dump = JSON.stringify(result);
    expect(dump).toContain('[REDACTED]'); // the echo did reach the checks, and was redacted
    expect(dump).not.toContain(KEY);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain(KEY);
  });

  it('keeps the key out of configuration errors', async () => {
    const thrown = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (err) {
        return err;
      }
      throw new Error('expected a throw');
    };
    const bad = thrown(() => httpValidation({ apiKey: KEY, concurrentRequests: -1 }));
    expect(bad).toBeInstanceOf(ConfigInvalidError);
    expect(JSON.stringify((bad as ConfigInvalidError).toJSON())).not.toContain(KEY);
    const env = thrown(() => fromEnv({ API_KEY: KEY, CONCURRENT_REQUESTS: 'many' }));
    expect((env as Error).message).toMatch(/CONCURRENT_REQUESTS must be a number/);
    expect(JSON.stringify((env as ConfigInvalidError).toJSON())).not.toContain(KEY);
    const creds = await validateDeployment({ baseUrl: `http://user:${KEY}@127.0.0.1:1` }).catch(
      (err: unknown) => err,
    );
    expect(creds).toBeInstanceOf(ConfigInvalidError);
    expect(JSON.stringify((creds as ConfigInvalidError).toJSON())).not.toContain(KEY);
  });
});

describe('bad input', () => {
  it.each<[string, ValidationOptions]>([
    ['a bad URL', { baseUrl: 'not a url' }],
    ['a non-http URL', { baseUrl: 'ftp://127.0.0.1/' }],
    ['no URL at all', { baseUrl: undefined }],
    ['zero concurrent requests', { concurrentRequests: 0 }],
    ['a negative MAX_RESPONSE_TIME_MS', { maxResponseTimeMs: -5 }],
    ['a NaN TIMEOUT_SECS', { timeoutSecs: Number.NaN }],
    ['a relative health path', { healthPath: 'health' }],
    ['an invalid metric name', { expectedMetrics: ['bad name'] }],
    ['an empty API key', { apiKey: ' ' }],
    ['a check switch that is not a boolean', { checks: { latency: 'yes' as unknown as boolean } }],
  ])('rejects %s with ConfigInvalidError before sending a request', async (_what, options) => {
    const url = await serve((_req, res) => res.end('{"status":"healthy"}'));
    const before = hits;
    await expect(validateDeployment({ baseUrl: url, ...options })).rejects.toBeInstanceOf(ConfigInvalidError);
    expect(hits).toBe(before);
  });
});

describe('nothing measured', () => {
  it('is inconclusive, never a pass, when every check is switched off', async () => {
    const url = await serve((_req, res) => res.end('{"status":"healthy"}'));
    const off = {
      health: false,
      auth: false,
      http2: false,
      graphql: false,
      metrics: false,
      latency: false,
      concurrency: false,
      securityHeaders: false,
    };
    const result = await validateDeployment({ baseUrl: url, checks: off });
    expect(result).toEqual({ verdict: 'inconclusive', checks: [] });
  });
});

describe('settings from the environment (fromEnv)', () => {
  it('reads the variables of validate.sh, and options win over them', () => {
    const env = {
      BASE_URL: 'https://staging.codegraph.com',
      TIMEOUT_SECS: '120',
      CONCURRENT_REQUESTS: '50',
      MAX_RESPONSE_TIME_MS: '200',
      VERBOSE: 'true',
      API_KEY: KEY,
    };
    expect(fromEnv(env)).toEqual({
      baseUrl: 'https://staging.codegraph.com',
      timeoutSecs: 120,
      concurrentRequests: 50,
      maxResponseTimeMs: 200,
      verbose: true,
      apiKey: KEY,
    });
    expect({ ...fromEnv(env), concurrentRequests: 5 }.concurrentRequests).toBe(5);
    expect(fromEnv({ VERBOSE: 'false', CODEGRAPH_API_KEY: 'other-key' })).toEqual({
      verbose: false,
      apiKey: 'other-key',
    });
    expect(fromEnv({})).toEqual({});
  });

  it('reads the environment itself when given env, and options still win', async () => {
    const url = await serve((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"healthy","version":"v7"}'),
    );
    const healthOnly = { checks: { ...headersOnly.checks, health: true, securityHeaders: false } };
    const fromEnvOnly = await validateDeployment({
      env: { BASE_URL: url, TIMEOUT_SECS: '2' },
      expectedVersion: 'v7',
      ...healthOnly,
    });
    expect(fromEnvOnly.verdict).toBe('pass');
    expect(fromEnvOnly.checks[0]!.query).toBe('GET /health');
    const optionsWin = await validateDeployment({
      env: { BASE_URL: 'http://127.0.0.1:1' },
      baseUrl: url,
      ...healthOnly,
    });
    expect(optionsWin.verdict).toBe('pass');
    await expect(validateDeployment({ env: { BASE_URL: url, CONCURRENT_REQUESTS: '0' } })).rejects.toThrow(
      /concurrentRequests must be an integer >= 1/,
    );
  });

  it('rejects a malformed number, naming the variable', () => {
    expect(() => fromEnv({ MAX_RESPONSE_TIME_MS: '200ms' })).toThrow(/MAX_RESPONSE_TIME_MS must be a number/);
  });
});
