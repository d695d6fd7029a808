import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortedError,
  ConfigInvalidError,
  commandCheck,
  type PoolState,
  runGate,
  type Target,
  type VerifyContext,
  webMetric,
} from '../src/index.js';
import { alive } from './helpers/sample.js';

// A real HTTP server answers JSON per path; the tests set what each path returns.
const bodies = new Map<string, { status: number; body: string }>();
const seenAuth: string[] = [];
let server: http.Server;
let base = '';
let dir = '';

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seenAuth.push(String(req.headers.authorization ?? ''));
    const a = bodies.get(req.url ?? '/') ?? { status: 404, body: '{}' };
    res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = mkdtempSync(path.join(tmpdir(), 'cg-command-'));
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

const pool = (name: string): PoolState => ({
  name,
  version: 'v2',
  replicas: 1,
  ready: 1,
  weight: 10,
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
  version: 'v2',
  pools,
  endpoint: 'http://127.0.0.1:1',
  target,
});

describe('webMetric', () => {
  it('judges the number a JSONPath-like selector finds, per pool, and keeps header secrets out', async () => {
    bodies.set('/stats?pool=canary', {
      status: 200,
      body: JSON.stringify({ data: { queues: [{ depth: 12 }] } }),
    });
    bodies.set('/stats?pool=stable', {
      status: 200,
      body: JSON.stringify({ data: { queues: [{ depth: '250' }] } }),
    });
    const v = webMetric({
      name: 'depth',
      url: `${base}/stats?pool={{pool}}`,
      select: '$.data.queues[0]["depth"]',
      threshold: { max: 100 },
      headers: { authorization: 'Bearer web-secret-7731' },
    });
    const r = await v.verify(ctx(pool('canary'), pool('stable')));
    expect(r.checks.map((c) => [c.name, c.verdict, c.observed])).toEqual([
      ['depth[canary]', 'pass', 12],
      ['depth[stable]', 'fail', 250],
    ]);
    expect(seenAuth).toContain('Bearer web-secret-7731');
    expect(JSON.stringify(r)).not.toContain('web-secret-7731');
  });

  it.each([
    ['a missing value', {}],
    ['an empty string', { v: '' }],
    ['blanks', { v: '  ' }],
    ['0x0', { v: '0x0' }],
    ['null', { v: null }],
    ['a boolean', { v: false }],
  ])('is inconclusive, never a pass, on %s', async (_what, json) => {
    bodies.set('/v', { status: 200, body: JSON.stringify(json) });
    const r = await webMetric({ name: 'v', url: `${base}/v`, select: '$.v', threshold: { max: 1 } }).verify(
      ctx(pool('canary')),
    );
    expect(r.verdict).toBe('inconclusive');
  });

  it('counts a 5xx or a body that is not JSON as an error measurement', async () => {
    bodies.set('/broken', { status: 503, body: 'down' });
    bodies.set('/html', { status: 200, body: '<html>' });
    for (const p of ['/broken', '/html']) {
      const v = webMetric({ name: 'v', url: `${base}${p}`, select: '$.v', threshold: { max: 1 } });
      const r = await runGate('g', [v], ctx(pool('canary')), {
        count: 2,
        intervalMs: 1,
        consecutiveErrorLimit: 1,
      });
      expect(r.verdict).toBe('error');
    }
  });

  it.each([
    [
      'a selector without $',
      () => webMetric({ name: 'v', url: `${base}/v`, select: 'v', threshold: { max: 1 } }),
    ],
    [
      'a broken selector',
      () => webMetric({ name: 'v', url: `${base}/v`, select: '$.a[', threshold: { max: 1 } }),
    ],
    [
      'a file URL',
      () => webMetric({ name: 'v', url: 'file:///etc/passwd', select: '$.v', threshold: { max: 1 } }),
    ],
    ['no threshold', () => webMetric({ name: 'v', url: `${base}/v`, select: '$.v', threshold: {} })],
  ])('refuses %s when it is made', (_what, make) => {
    expect(make).toThrow(ConfigInvalidError);
  });
});

describe('commandCheck', () => {
  const script = (name: string, body: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, body);
    return file;
  };

  it('passes on exit 0 and judges the number on the last stdout line', async () => {
    const file = script('ok.mjs', "console.log('warming up'); console.log('0.004');");
    const v = commandCheck({
      name: 'smoke',
      command: process.execPath,
      args: [file],
      threshold: { max: 0.01 },
    });
    const r = await v.verify(ctx(pool('canary')));
    expect(r.verdict).toBe('pass');
    expect(r.checks.map((c) => [c.name, c.observed])).toEqual([
      ['smoke.exit', 0],
      ['smoke.value', 0.004],
    ]);
  });

  it('fails on exit 1, and is inconclusive when the number is missing', async () => {
    const failing = script('fail.mjs', 'process.exit(1)');
    expect(
      (await commandCheck({ name: 'c', command: process.execPath, args: [failing] }).verify(ctx(pool('p'))))
        .verdict,
    ).toBe('fail');
    const quiet = script('quiet.mjs', "console.log('done')");
    const r = await commandCheck({
      name: 'c',
      command: process.execPath,
      args: [quiet],
      threshold: { min: 1 },
    }).verify(ctx(pool('p')));
    expect(r.verdict).toBe('inconclusive');
  });

  it('passes a pool name as one argument, never through a shell', async () => {
    const file = script('argv.mjs', 'console.log(JSON.stringify(process.argv.slice(2)))');
    const out = path.join(dir, 'pwned');
    const hostile = `x; touch ${out} $(touch ${out})`;
    const v = commandCheck({ name: 'argv', command: process.execPath, args: [file, '--pool={{pool}}'] });
    const r = await v.verify(ctx(pool(hostile)));
    expect(r.verdict).toBe('pass');
    expect(existsSync(out)).toBe(false);
    expect(r.checks[0]!.query).toContain(JSON.stringify(`--pool=${hostile}`));
  });

  it('kills the whole process group when the program outlives its timeout', async () => {
    const pidFile = path.join(dir, 'grandchild.pid');
    const file = script(
      'hang.mjs',
      `import { spawn } from 'node:child_process'; import { writeFileSync } from 'node:fs';
       const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
       writeFileSync(${JSON.stringify(pidFile)}, String(c.pid)); setInterval(() => {}, 1000);`,
    );
    const v = commandCheck({ name: 'hang', command: process.execPath, args: [file], timeoutMs: 800 });
    const r = await runGate('g', [v], ctx(pool('p')), { count: 1 });
    expect(r.verdict).toBe('error');
    expect(r.measurements[0]!.error?.message).toMatch(/ran longer than 800 ms and was killed/);
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    await new Promise((ok) => setTimeout(ok, 200));
    expect(alive(grandchild)).toBe(false);
  });

  it('kills the program when the gate is aborted', async () => {
    const file = script('slow.mjs', 'setInterval(() => {}, 1000)');
    const ac = new AbortController();
    const v = commandCheck({ name: 'slow', command: process.execPath, args: [file], timeoutMs: 60_000 });
    setTimeout(() => ac.abort(), 300);
    await expect(v.verify({ ...ctx(pool('p')), signal: ac.signal })).rejects.toThrow(AbortedError);
  });

  it('refuses a missing command or a non-string argument when it is made', () => {
    expect(() => commandCheck({ name: 'c', command: '' })).toThrow(ConfigInvalidError);
    expect(() => commandCheck({ name: 'c', command: 'true', args: [1 as unknown as string] })).toThrow(
      ConfigInvalidError,
    );
  });
});
