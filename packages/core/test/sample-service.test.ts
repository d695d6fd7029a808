import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type RunningSample,
  sampleServerPath,
  startSample,
  stopAllSamples,
  until,
} from './helpers/sample.js';

const run = promisify(execFile);
const API_KEY = 'sample-test-key-7f3a';
const started: RunningSample[] = [];
const dirs: string[] = [];

async function sample(opts: Parameters<typeof startSample>[0] = {}) {
  const s = await startSample(opts);
  started.push(s);
  return s;
}
async function tempDir() {
  const dir = await mkdtemp(path.join(tmpdir(), 'cg-sample-'));
  dirs.push(dir);
  return dir;
}
const auth = { authorization: `Bearer ${API_KEY}` };
const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});
afterAll(stopAllSamples);

/** Runs the service and collects its exit code and output (for start-up failures). */
function runToExit(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [sampleServerPath, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('sample service', () => {
  it('reports healthy with its version and uptime', async () => {
    const svc = await sample({ version: 'v2' });
    const res = await fetch(`${svc.url}/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'healthy', version: 'v2', indexing: 'running' });
    expect(typeof body.uptime_s).toBe('number');
    expect(res.headers.get('x-codegraph-version')).toBe('v2');
  });

  it('sends every OWASP security header on every response, and omits the ones a fault names', async () => {
    const svc = await sample();
    for (const p of ['/health', '/metrics', '/nope']) {
      const res = await fetch(svc.url + p);
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      for (const h of ['permissions-policy', 'cross-origin-opener-policy', 'cross-origin-resource-policy']) {
        expect(res.headers.get(h)).toBeTruthy();
      }
    }
    const faulty = await sample({
      env: { FAULT_MISSING_HEADERS: 'X-Frame-Options,strict-transport-security' },
    });
    const res = await fetch(`${faulty.url}/health`);
    expect(res.headers.get('x-frame-options')).toBeNull();
    expect(res.headers.get('strict-transport-security')).toBeNull();
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('exposes request, latency, cache and build metrics for Prometheus', async () => {
    const svc = await sample({ version: 'v3', args: ['--cache-hit-ratio', '0.9'] });
    await fetch(`${svc.url}/api/v1/search?q=graph`);
    const text = await (await fetch(`${svc.url}/metrics`)).text();
    // Buckets fine enough around the 50 ms target: 5, 10, 25, 50 and 100 ms all exist.
    for (const le of ['0.005', '0.01', '0.025', '0.05', '0.1']) {
      expect(text).toContain(
        `http_request_duration_seconds_bucket{le="${le}",method="GET",route="/api/v1/search",status="200"}`,
      );
    }
    expect(text).toMatch(
      /http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/search",status="200"\} 1/,
    );
    expect(text).toMatch(/http_requests_total\{method="GET",route="\/api\/v1\/search",code="200"\} 1/);
    expect(text).toMatch(/^cache_hit_ratio 0\.9$/m);
    expect(text).toMatch(/^codegraph_build_info\{version="v3"\} 1$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
  });

  it('answers search deterministically and rejects a search without q', async () => {
    const a = await sample();
    const b = await sample();
    const one = await (await fetch(`${a.url}/api/v1/search?q=parse`)).json();
    const two = await (await fetch(`${b.url}/api/v1/search?q=parse`)).json();
    expect(one).toEqual(two);
    expect((one as { results: unknown[] }).results.length).toBeGreaterThanOrEqual(3);
    expect((await fetch(`${a.url}/api/v1/search`)).status).toBe(400);
  });

  it('executes GraphQL queries and reports unknown fields and bad syntax as errors', async () => {
    const svc = await sample({ version: 'v4' });
    const ok = await post(`${svc.url}/graphql`, { query: '{ version health }' });
    expect(await ok.json()).toEqual({ data: { version: 'v4', health: 'healthy' } });
    const unknown = await post(`${svc.url}/graphql`, { query: '{ version secrets }' });
    const body = (await unknown.json()) as { errors: { message: string }[]; data?: unknown };
    expect(body.data).toBeUndefined();
    expect(body.errors[0]?.message).toContain('secrets');
    expect((await post(`${svc.url}/graphql`, { query: 'mutation {' })).status).toBe(400);
    const notJson = await fetch(`${svc.url}/graphql`, { method: 'POST', body: '{nope' });
    expect(notJson.status).toBe(400);
    expect((await fetch(`${svc.url}/graphql`)).status).toBe(405);
  });

  it('guards the protected endpoint: 401 without a key, 403 with a wrong one, 200 with the right one', async () => {
    const svc = await sample({ env: { API_KEY } });
    const none = await fetch(`${svc.url}/api/v1/protected`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    const wrong = await fetch(`${svc.url}/api/v1/protected`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(403);
    const right = await fetch(`${svc.url}/api/v1/protected`, { headers: auth });
    expect(right.status).toBe(200);
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).not.toContain(API_KEY);
    expect(svc.stderr()).not.toContain(API_KEY);
  });

  it('answers exactly the configured share of API requests with 500 and leaves /health alone', async () => {
    const svc = await sample({ args: ['--error-rate', '0.25'] });
    const codes: number[] = [];
    for (let i = 0; i < 20; i++) codes.push((await fetch(`${svc.url}/api/v1/search?q=x`)).status);
    expect(codes.filter((c) => c === 500)).toHaveLength(5);
    expect(codes.filter((c) => c === 200)).toHaveLength(15);
    for (let i = 0; i < 5; i++) expect((await fetch(`${svc.url}/health`)).status).toBe(200);
  });

  it('adds the configured latency to every request but /metrics', async () => {
    const svc = await sample({ env: { FAULT_LATENCY_MS: '120' } });
    let t = performance.now();
    await fetch(`${svc.url}/api/v1/search?q=x`);
    expect(performance.now() - t).toBeGreaterThanOrEqual(115);
    t = performance.now();
    await fetch(`${svc.url}/metrics`);
    expect(performance.now() - t).toBeLessThan(115);
  });

  it('lets an operator with the API key switch faults at run time, and validates them', async () => {
    const svc = await sample({ env: { API_KEY } });
    expect((await post(`${svc.url}/admin/faults`, { errorRate: 1 })).status).toBe(401);
    expect((await post(`${svc.url}/admin/faults`, { errorRate: 2 }, auth)).status).toBe(400);
    expect((await post(`${svc.url}/admin/faults`, { bogus: 1 }, auth)).status).toBe(400);
    expect((await fetch(`${svc.url}/api/v1/search?q=x`)).status).toBe(200);
    const res = await post(`${svc.url}/admin/faults`, { errorRate: 1, cacheHitRatio: 0.5 }, auth);
    expect(res.status).toBe(200);
    expect((await fetch(`${svc.url}/api/v1/search?q=x`)).status).toBe(500);
    expect(await (await fetch(`${svc.url}/metrics`)).text()).toMatch(/^cache_hit_ratio 0\.5$/m);
    await post(`${svc.url}/admin/faults`, { errorRate: 0 }, auth);
    expect((await fetch(`${svc.url}/api/v1/search?q=x`)).status).toBe(200);
  });

  it('exits 1 before listening when told to crash on start', async () => {
    const result = await runToExit(['--port', '0', '--crash-on-start']);
    expect(result.code).toBe(1);
    expect(result.stdout).not.toContain('listening');
    await expect(startSample({ env: { FAULT_CRASH_ON_START: 'true' } })).rejects.toThrow(/exited with 1/);
  });

  it('exits 2 with a clear message on an unknown flag or a bad value, never echoing the value', async () => {
    expect((await runToExit(['--bogus'])).stderr).toMatch(/unknown argument/);
    const bad = await runToExit(['--port', '0', '--error-rate', 'super-secret-value']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--error-rate must be a number between 0 and 1/);
    expect(bad.stderr).not.toContain('super-secret-value');
  });

  it('starts listening only after the slow-start delay', async () => {
    const t = performance.now();
    const svc = await sample({ args: ['--slow-start-ms', '400'] });
    expect(performance.now() - t).toBeGreaterThanOrEqual(400);
    expect((await fetch(`${svc.url}/health`)).status).toBe(200);
  });

  it('reports indexing paused and resumed in /health', async () => {
    const svc = await sample({ env: { API_KEY } });
    expect((await post(`${svc.url}/api/v1/admin/indexing/pause`, {})).status).toBe(401);
    expect((await post(`${svc.url}/api/v1/admin/indexing/pause`, {}, auth)).status).toBe(200);
    expect(await (await fetch(`${svc.url}/health`)).json()).toMatchObject({ indexing: 'paused' });
    await post(`${svc.url}/api/v1/admin/indexing/resume`, {}, auth);
    expect(await (await fetch(`${svc.url}/health`)).json()).toMatchObject({ indexing: 'running' });
  });

  it('takes a real RocksDB checkpoint with ldb, refusing bad, existing and unconfigured paths', async () => {
    const dir = await tempDir();
    const db = path.join(dir, 'db');
    await run('ldb', [`--db=${db}`, '--create_if_missing', 'put', 'repo:1', 'codegraph']);
    const svc = await sample({ env: { API_KEY, DATA_DIR: db } });
    const cp = path.join(dir, 'cp1');
    expect((await post(`${svc.url}/api/v1/admin/checkpoint`, { path: cp })).status).toBe(401);
    expect((await post(`${svc.url}/api/v1/admin/checkpoint`, { path: 'rel/dir' }, auth)).status).toBe(400);
    expect((await post(`${svc.url}/api/v1/admin/checkpoint`, {}, auth)).status).toBe(400);
    const res = await post(`${svc.url}/api/v1/admin/checkpoint`, { path: cp }, auth);
    expect(res.status).toBe(201);
    expect((await res.json()) as { files: string[] }).toMatchObject({
      path: cp,
      files: expect.arrayContaining(['CURRENT']),
    });
    const { stdout } = await run('ldb', [`--db=${cp}`, 'get', 'repo:1']);
    expect(stdout.trim()).toBe('codegraph');
    expect((await post(`${svc.url}/api/v1/admin/checkpoint`, { path: cp }, auth)).status).toBe(409);

    const missingDb = await sample({ env: { API_KEY, DATA_DIR: path.join(dir, 'absent') } });
    const failed = await post(
      `${missingDb.url}/api/v1/admin/checkpoint`,
      { path: path.join(dir, 'cp2') },
      auth,
    );
    expect(failed.status).toBe(500);
    const noData = await sample({ env: { API_KEY } });
    expect(
      (await post(`${noData.url}/api/v1/admin/checkpoint`, { path: path.join(dir, 'cp3') }, auth)).status,
    ).toBe(501);
  });

  it('finishes in-flight requests on SIGTERM, then exits 0 and stops accepting', async () => {
    const svc = await sample({ args: ['--latency-ms', '300'] });
    const inflight = fetch(`${svc.url}/api/v1/search?q=x`);
    await until(async () =>
      /^http_requests_in_flight 1$/m.test(await (await fetch(`${svc.url}/metrics`)).text()),
    );
    const exit = svc.stop(10_000);
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await exit).toBe(0);
    await expect(fetch(`${svc.url}/health`)).rejects.toThrow();
  });

  it('serves HTTPS with HTTP/2 and HTTP/1.1 when given a certificate', async () => {
    const dir = await tempDir();
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    await run(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert].concat([
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ]),
    );
    const svc = await sample({ args: ['--tls-cert', cert, '--tls-key', key] });
    expect(svc.url).toMatch(/^https:/);
    const { readFile } = await import('node:fs/promises');
    const ca = await readFile(cert);
    const session = http2.connect(svc.url, { ca });
    try {
      const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = session.request({ ':path': '/health' });
        let status = 0;
        let text = '';
        req.on('response', (h) => (status = Number(h[':status'])));
        req.setEncoding('utf8').on('data', (d) => (text += d));
        req.on('end', () => resolve({ status, text }));
        req.on('error', reject);
      });
      expect(body.status).toBe(200);
      expect(JSON.parse(body.text)).toMatchObject({ status: 'healthy' });
    } finally {
      session.close();
    }
    const https = await import('node:https');
    const status = await new Promise<number>((resolve, reject) => {
      https
        .get(`${svc.url}/health`, { ca }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', reject);
    });
    expect(status).toBe(200);
  });
});
