import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortedError,
  ConfigInvalidError,
  localTarget,
  ReleaseError,
  TargetOperationError,
  type Weights,
} from '../src/index.js';
import { type RunningPrometheus, startPrometheus } from './helpers/prometheus.js';
import {
  alive,
  controlUrl,
  countBy,
  LocalHarness,
  loadGenerator,
  processesUsing,
  recordedPids,
  sampleServerPath,
  until,
} from './helpers/sample.js';

const run = promisify(execFile);

const h = new LocalHarness();
afterEach(async () => {
  const survivors = await h.cleanup();
  expect(survivors, 'processes left behind after cleanup').toEqual([]);
});

/** The typed error a call rejects with. */
async function rejection(p: Promise<unknown>): Promise<ReleaseError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ReleaseError);
    return err as ReleaseError;
  }
  throw new Error('expected a rejection');
}

describe('localTarget: options and input', () => {
  it('refuses bad options with CG_CONFIG_INVALID before creating the state directory', async () => {
    const stateDir = path.join(await h.dir(), 'never-created');
    const command = LocalHarness.command();
    const bad: Array<Record<string, unknown>> = [
      { stateDir: '', command },
      { stateDir },
      { stateDir, command, healthPath: 'health' },
      { stateDir, command, readyTimeoutMs: 0 },
      { stateDir, command, stopTimeoutMs: -1 },
      { stateDir, command, proxyPort: 70_000 },
      { stateDir, command, host: '0.0.0.0' },
      { stateDir, command, readyTimout: 5 },
    ];
    for (const options of bad) {
      expect(() => localTarget(options as never), JSON.stringify(Object.keys(options))).toThrow(
        ConfigInvalidError,
      );
    }
    await expect(stat(stateDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses bad provision requests and a bad command() result before spawning anything', async () => {
    const stateDir = path.join(await h.dir(), 'state');
    const target = await h.target({ stateDir, command: () => ({ command: '', args: [] }) });
    for (const request of [
      { pool: '../etc', version: 'v1', replicas: 1 },
      { pool: 'ok', version: '', replicas: 1 },
      { pool: 'ok', version: 'v1', replicas: 1.5 },
      { pool: 'ok', version: 'v1', replicas: -1 },
    ]) {
      expect((await rejection(target.provision(request))).code).toBe('CG_CONFIG_INVALID');
    }
    await expect(stat(stateDir)).rejects.toMatchObject({ code: 'ENOENT' });
    const err = await rejection(target.provision({ pool: 'ok', version: 'v1', replicas: 1 }));
    expect(err.code).toBe('CG_CONFIG_INVALID');
    expect(err.message).toMatch(/command must be a non-empty string/);
    await expect(stat(stateDir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await target.describe()).pools).toEqual([]);
  });
});

describe('localTarget: failures it reports', () => {
  it('reports a command that cannot be started, or a command() that throws, as CG_TARGET_FAILED', async () => {
    const missing = await h.target({ command: () => ({ command: '/nonexistent/codegraph-api' }) });
    const err = await rejection(missing.provision({ pool: 'p', version: 'v1', replicas: 1 }));
    expect(err.code).toBe('CG_TARGET_FAILED');
    expect(err.message).toMatch(/cannot start \/nonexistent\/codegraph-api for pool p, version v1: .*ENOENT/);
    expect((await missing.describe()).pools).toEqual([]);
    const throwing = await h.target({
      command: () => {
        throw new Error('no build for this version');
      },
    });
    const thrown = await rejection(throwing.provision({ pool: 'p', version: 'v1', replicas: 1 }));
    expect(thrown.code).toBe('CG_TARGET_FAILED');
    expect((thrown.cause as Error).message).toBe('no build for this version');
  });

  it('reports a proxy that cannot take its front port, with the reason from its log', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as net.AddressInfo).port;
      const stateDir = await h.dir();
      const target = await h.target({ stateDir, proxyPort: port });
      const err = await rejection(target.provision({ pool: 'p', version: 'v1', replicas: 1 }));
      expect(err.code).toBe('CG_TARGET_FAILED');
      expect(err.message).toMatch(/the proxy exited \(front port \d+\).*EADDRINUSE/s);
      expect((await recordedPids(stateDir)).filter(alive)).toEqual([]);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it('refuses to work from a damaged state file instead of guessing', async () => {
    const stateDir = await h.dir();
    await writeFile(path.join(stateDir, 'pools.json'), '{"pools": {"p": ');
    const target = await h.target({ stateDir });
    const err = await rejection(target.describe());
    expect(err.code).toBe('CG_TARGET_FAILED');
    expect(err.message).toMatch(/pools.json .* is not valid JSON/);
    expect((await rejection(target.provision({ pool: 'p', version: 'v1', replicas: 1 }))).code).toBe(
      'CG_TARGET_FAILED',
    );
  });
});

describe('localTarget: provision', () => {
  it('provisions two pools and sends exactly 90/10 of requests by smooth weighted round-robin', async () => {
    const target = await h.target();
    const a = await target.provision({ pool: 'stable', version: 'v1', replicas: 2 });
    expect(a).toMatchObject({ name: 'stable', version: 'v1', replicas: 2, ready: 2, weight: 0 });
    expect(a.endpoints).toHaveLength(2);
    await target.provision({ pool: 'canary', version: 'v2', replicas: 1 });
    const url = await target.endpoint();
    const unrouted = await fetch(`${url}/health`);
    expect(unrouted.status).toBe(503);
    expect(await unrouted.json()).toEqual({ error: 'no ready pool has weight' });
    await target.route({ stable: 90, canary: 10 });
    expect(await countBy(`${url}/health`, 100)).toEqual({ stable: 90, canary: 10 });
    const state = await target.describe();
    expect(state.endpoint).toBe(url);
    expect(state.pools.map((p) => [p.name, p.version, p.ready, p.weight])).toEqual([
      ['stable', 'v1', 2, 90],
      ['canary', 'v2', 1, 10],
    ]);
  });

  it("round-robins across a pool's replicas and answers each endpoint directly", async () => {
    const target = await h.target();
    const pool = await target.provision({ pool: 'p', version: 'v1', replicas: 2 });
    await target.route({ p: 100 });
    const counts = await countBy(`${await target.endpoint()}/health`, 10, 'pid');
    expect(Object.values(counts)).toEqual([5, 5]);
    for (const endpoint of pool.endpoints) expect((await fetch(`${endpoint}/health`)).status).toBe(200);
  });

  it('is idempotent: provisioning the same pool again keeps the same processes', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir });
    const first = await target.provision({ pool: 'p', version: 'v1', replicas: 2 });
    const pids = await recordedPids(stateDir);
    const again = await target.provision({ pool: 'p', version: 'v1', replicas: 2 });
    expect(again).toEqual(first);
    expect(await recordedPids(stateDir)).toEqual(pids);
  });

  it('replaces a replica that died and scales up and down on request', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir });
    await target.provision({ pool: 'p', version: 'v1', replicas: 2 });
    const [victim, survivor] = await recordedPids(stateDir);
    process.kill(victim!, 'SIGKILL');
    await until(() => !alive(victim!));
    expect((await target.describe()).pools[0]).toMatchObject({ replicas: 2, ready: 1 });
    const healed = await target.provision({ pool: 'p', version: 'v1', replicas: 2 });
    expect(healed.ready).toBe(2);
    const after = await recordedPids(stateDir);
    expect(after).toContain(survivor);
    expect(after).not.toContain(victim);
    const up = await target.provision({ pool: 'p', version: 'v1', replicas: 3 });
    expect(up.ready).toBe(3);
    const threePids = (await recordedPids(stateDir)).slice(0, 3);
    const down = await target.provision({ pool: 'p', version: 'v1', replicas: 1 });
    expect(down).toMatchObject({ replicas: 1, ready: 1 });
    expect(threePids.filter(alive)).toHaveLength(1);
  });

  it('refuses to reuse a pool name for another version and changes nothing', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir });
    await target.provision({ pool: 'p', version: 'v1', replicas: 1 });
    const before = await recordedPids(stateDir);
    const err = await rejection(target.provision({ pool: 'p', version: 'v2', replicas: 1 }));
    expect(err).toBeInstanceOf(ConfigInvalidError);
    expect(err.message).toMatch(/pool p runs version v1, not v2/);
    expect(await recordedPids(stateDir)).toEqual(before);
    expect((await target.describe()).pools[0]).toMatchObject({ version: 'v1', ready: 1 });
  });

  it('reports a replica that crashes on start with its pool, version and log, and leaves no process', async () => {
    const stateDir = await h.dir();
    const target = await h.target({
      stateDir,
      command: LocalHarness.command(
        {},
        { v9: { env: { FAULT_CRASH_ON_START: '1', API_KEY: 'crash-secret-123' } } },
      ),
    });
    const err = await rejection(target.provision({ pool: 'broken', version: 'v9', replicas: 2 }));
    expect(err).toBeInstanceOf(TargetOperationError);
    expect(err.code).toBe('CG_TARGET_FAILED');
    expect(err.message).toMatch(/pool broken \(version v9\) exited \(code 1\) before it was ready/);
    expect(err.message).toContain('crashing on start');
    expect(JSON.stringify(err.toJSON())).not.toContain('crash-secret-123');
    expect(err.details).toMatchObject({ pool: 'broken', version: 'v9' });
    expect(alive(err.details!.pid as number)).toBe(false);
    expect((await target.describe()).pools).toEqual([]);
    expect(await recordedPids(stateDir)).toHaveLength(1); // only the proxy remains
    // The failed pool left no record, so it can be provisioned with a good version.
    const fixed = await h.target({ stateDir });
    expect((await fixed.provision({ pool: 'broken', version: 'v1', replicas: 1 })).ready).toBe(1);
  });

  it('stops a replica that misses the readiness deadline', async () => {
    const target = await h.target({
      readyTimeoutMs: 400,
      command: LocalHarness.command({ args: ['--slow-start-ms', '30000'] }),
    });
    const err = await rejection(target.provision({ pool: 'slow', version: 'v1', replicas: 1 }));
    expect(err.code).toBe('CG_TARGET_FAILED');
    expect(err.message).toMatch(/did not answer \/health with 200 within 400 ms/);
    await until(() => !alive(err.details!.pid as number), 5_000, 'slow replica stopped');
  });

  it('stops the half-started replica when a provision is cancelled', async () => {
    const stateDir = await h.dir();
    const target = await h.target({
      stateDir,
      command: LocalHarness.command({ args: ['--slow-start-ms', '30000'] }),
    });
    const controller = new AbortController();
    const pending = target.provision(
      { pool: 'p', version: 'v1', replicas: 1 },
      { signal: controller.signal },
    );
    let replicaPid = 0;
    await until(async () => {
      const pids = await recordedPids(stateDir);
      replicaPid = pids.length === 2 ? pids[0]! : 0; // replica recorded (before the proxy in the list)
      return replicaPid > 0;
    });
    controller.abort();
    const err = await rejection(pending);
    expect(err).toBeInstanceOf(AbortedError);
    expect(alive(replicaPid)).toBe(false);
    expect((await target.describe()).pools).toEqual([]);
  });
});

describe('localTarget: route and retire', () => {
  it('validates weights and changes nothing on bad input', async () => {
    const target = await h.target();
    await target.provision({ pool: 'a', version: 'v1', replicas: 1 });
    await target.provision({ pool: 'empty', version: 'v2', replicas: 0 });
    await target.route({ a: 100 });
    const cases: Array<[Record<string, number>, string]> = [
      [{ a: 90 }, 'CG_CONFIG_INVALID'],
      [{ a: 50.5, empty: 49.5 }, 'CG_CONFIG_INVALID'],
      [{ a: 110, empty: -10 }, 'CG_CONFIG_INVALID'],
      [{ a: 50, ghost: 50 }, 'CG_CONFIG_INVALID'],
      [{ a: 0 }, 'CG_CONFIG_INVALID'],
      [{ a: 50, empty: 50 }, 'CG_TARGET_FAILED'],
    ];
    for (const [weights, code] of cases) {
      expect((await rejection(target.route(weights))).code, JSON.stringify(weights)).toBe(code);
    }
    expect((await rejection(target.route(null as never))).code).toBe('CG_CONFIG_INVALID');
    expect((await target.describe()).pools.map((p) => [p.name, p.weight])).toEqual([
      ['a', 100],
      ['empty', 0],
    ]);
    expect(await countBy(`${await target.endpoint()}/health`, 5)).toEqual({ a: 5 });
  });

  it('refuses to scale a weighted pool to zero', async () => {
    const target = await h.target();
    await target.provision({ pool: 'a', version: 'v1', replicas: 1 });
    await target.route({ a: 100 });
    expect((await rejection(target.provision({ pool: 'a', version: 'v1', replicas: 0 }))).code).toBe(
      'CG_TARGET_FAILED',
    );
    expect((await target.describe()).pools[0]).toMatchObject({ ready: 1, weight: 100 });
  });

  it('refuses to retire a pool that still has weight, and retiring a missing pool is a no-op', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir });
    await target.provision({ pool: 'old', version: 'v1', replicas: 1 });
    await target.provision({ pool: 'new', version: 'v2', replicas: 1 });
    await target.route({ old: 100 });
    const oldPid = (await recordedPids(stateDir))[0]!;
    const err = await rejection(target.retire('old'));
    expect(err).toBeInstanceOf(TargetOperationError);
    expect(err.message).toMatch(/still has weight 100/);
    expect(alive(oldPid)).toBe(true);
    await target.retire('never-existed');
    await target.route({ new: 100 });
    await target.retire('old');
    await target.retire('old');
    expect(alive(oldPid)).toBe(false);
    expect((await target.describe()).pools.map((p) => p.name)).toEqual(['new']);
  });

  it('drops no request while weights move from v1 to v2 and v1 is retired, under continuous load', async () => {
    const target = await h.target();
    await target.provision({ pool: 'v1', version: 'v1', replicas: 2 });
    await target.route({ v1: 100 });
    const load = loadGenerator(`${await target.endpoint()}/api/v1/search?q=graph`);
    try {
      await load.more(50);
      await target.provision({ pool: 'v2', version: 'v2', replicas: 2 });
      for (const weights of [{ v1: 90, v2: 10 }, { v1: 50, v2: 50 }, { v2: 100 }] as Weights[]) {
        await target.route(weights);
        await load.more(50);
      }
      await target.retire('v1');
      await load.more(50);
    } finally {
      await load.stop();
    }
    expect(load.stats.failures).toEqual([]);
    expect(load.stats.byPool.v1).toBeGreaterThan(50);
    expect(load.stats.byPool.v2).toBeGreaterThan(50);
  });

  it('drops no request while a pool scales down from 3 replicas to 1, under continuous load', async () => {
    const stateDir = await h.dir();
    const target = await h.target({
      stateDir,
      command: LocalHarness.command({ args: ['--latency-ms', '5'] }),
    });
    await target.provision({ pool: 'p', version: 'v1', replicas: 3 });
    await target.route({ p: 100 });
    const before = await recordedPids(stateDir);
    const load = loadGenerator(`${await target.endpoint()}/api/v1/search?q=graph`, 6);
    try {
      await load.more(60);
      await target.provision({ pool: 'p', version: 'v1', replicas: 1 });
      await load.more(60);
    } finally {
      await load.stop();
    }
    expect(load.stats.failures).toEqual([]);
    expect(before.slice(0, 3).filter(alive)).toHaveLength(1);
  });

  it('retries a GET on another replica when one dies, but does not replay a POST', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir });
    await target.provision({ pool: 'p', version: 'v1', replicas: 2 });
    await target.route({ p: 100 });
    const url = await target.endpoint();
    const [victim] = await recordedPids(stateDir);
    process.kill(victim!, 'SIGKILL');
    await until(() => !alive(victim!));
    const gets = await Promise.all(
      Array.from({ length: 10 }, () => fetch(`${url}/health`).then((r) => r.status)),
    );
    expect(gets).toEqual(Array(10).fill(200));
    const posts: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        body: JSON.stringify({ query: '{ version }' }),
      });
      posts.push(res.status);
    }
    expect(posts.filter((s) => s === 502)).toHaveLength(2);
    expect(posts.filter((s) => s === 200)).toHaveLength(2);
    const metrics = await (await fetch(`${await controlUrl(stateDir)}/metrics`)).text();
    expect(metrics).toMatch(/codegraph_proxy_upstream_retries_total\{pool="p"\} [1-9]/);
  });
});

describe('localTarget: stopping replicas', () => {
  it('SIGKILLs a replica that ignores SIGTERM once stopTimeoutMs has passed', async () => {
    const stubborn = `const http = require('node:http');
process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
http.createServer((q, r) => r.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');`;
    const stateDir = await h.dir();
    const target = await h.target({
      stateDir,
      stopTimeoutMs: 600,
      command: () => ({ command: process.execPath, args: ['-e', stubborn] }),
    });
    await target.provision({ pool: 'p', version: 'v1', replicas: 1 });
    const [pid] = await recordedPids(stateDir);
    const t0 = performance.now();
    await target.retire('p');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(600);
    expect(alive(pid!)).toBe(false);
    expect(await readFile(path.join(stateDir, 'logs', 'p-0.log'), 'utf8')).toContain('ignoring SIGTERM');
  });

  it("stops a replica's whole process group, not just the process it started", async () => {
    const stateDir = await h.dir();
    const target = await h.target({
      stateDir,
      // A wrapper shell, as launch scripts often are: the service is its child.
      command: ({ version, port }) => ({
        command: '/bin/sh',
        args: [
          '-c',
          `"${process.execPath}" "${sampleServerPath}" --port ${port} --version ${version} & wait`,
        ],
      }),
    });
    const pool = await target.provision({ pool: 'p', version: 'v1', replicas: 1 });
    const service = ((await (await fetch(`${pool.endpoints[0]}/health`)).json()) as { pid: number }).pid;
    const [shell] = await recordedPids(stateDir);
    expect(service).not.toBe(shell);
    h.pids.add(service);
    await target.retire('p');
    await until(() => !alive(service), 5_000, 'the service in the group stopped');
    expect(alive(shell!)).toBe(false);
  });
});

describe('localTarget: traffic figures', () => {
  it('counts requests, errors and latency per pool, and starts afresh on reset', async () => {
    const target = await h.target({
      command: LocalHarness.command({}, { v2: { args: ['--error-rate', '0.5'] } }),
    });
    await target.provision({ pool: 'stable', version: 'v1', replicas: 1 });
    await target.provision({ pool: 'canary', version: 'v2', replicas: 1 });
    await target.route({ stable: 50, canary: 50 });
    const url = await target.endpoint();
    for (let i = 0; i < 20; i++) await (await fetch(`${url}/api/v1/search?q=x`)).arrayBuffer();
    const stable = await target.traffic('stable');
    const canary = await target.traffic('canary');
    expect(stable).toMatchObject({ pool: 'stable', requests: 10, errors: 0 });
    expect(canary).toMatchObject({ pool: 'canary', requests: 10, errors: 5 });
    expect(stable.latencyMs).toHaveLength(10);
    expect(stable.latencyMs.every((ms) => ms > 0 && ms < 5_000)).toBe(true);
    expect(Number.isNaN(Date.parse(stable.since))).toBe(false);
    await target.resetTraffic('canary');
    expect(await target.traffic('canary')).toMatchObject({ requests: 0, errors: 0, latencyMs: [] });
    expect((await target.traffic('stable')).requests).toBe(10);
    expect((await rejection(target.traffic('ghost'))).code).toBe('CG_CONFIG_INVALID');
    // The latency samples are a bounded ring: the most recent 1024.
    await target.route({ stable: 100 });
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let i = 0; i < 105; i++) await (await fetch(`${url}/health`)).arrayBuffer();
      }),
    );
    const busy = await target.traffic('stable');
    expect(busy.requests).toBe(1_060);
    expect(busy.latencyMs).toHaveLength(1_024);
  });

  it('counts a client that hangs up early as 499, not as an error of the pool', async () => {
    const target = await h.target({ command: LocalHarness.command({ args: ['--latency-ms', '400'] }) });
    await target.provision({ pool: 'slow', version: 'v1', replicas: 1 });
    await target.route({ slow: 100 });
    await target.resetTraffic();
    const url = await target.endpoint();
    await expect(fetch(`${url}/api/v1/search?q=x`, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    await until(async () => (await target.traffic('slow')).requests === 1, 5_000, 'the hang-up counted');
    expect(await target.traffic('slow')).toMatchObject({ requests: 1, errors: 0 });
    const metrics = await (await fetch(await target.metricsUrl())).text();
    expect(metrics).toContain('codegraph_proxy_requests_total{pool="slow",version="v1",code="499"} 1');
  });

  it('exposes per-pool Prometheus metrics on the control port and tags every response with its pool', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir });
    await target.provision({ pool: 'stable', version: 'v1', replicas: 1 });
    await target.route({ stable: 100 });
    const url = await target.endpoint();
    for (const p of ['/health', '/api/v1/search?q=a', '/no-such-page']) {
      expect((await fetch(url + p)).headers.get('x-codegraph-pool')).toBe('stable');
    }
    const control = await controlUrl(stateDir);
    expect(await target.metricsUrl()).toBe(`${control}/metrics`);
    const text = await (await fetch(await target.metricsUrl())).text();
    expect(text).toContain('codegraph_proxy_requests_total{pool="stable",version="v1",code="200"} 2');
    expect(text).toContain('codegraph_proxy_requests_total{pool="stable",version="v1",code="404"} 1');
    expect(text).toMatch(/codegraph_proxy_request_duration_seconds_bucket\{pool="stable",le="\+Inf"\} 3/);
    expect(text).toMatch(/codegraph_proxy_request_duration_seconds_count\{pool="stable"\} 3/);
    // The control API's write side needs the token kept in proxy.json (mode 0600).
    const put = await fetch(`${control}/routes`, { method: 'PUT', body: '{"pools":{}}' });
    expect(put.status).toBe(401);
    expect((await stat(path.join(stateDir, 'proxy.json'))).mode & 0o077).toBe(0);
  });
});

describe('localTarget: scraped by a real Prometheus', () => {
  let prom: RunningPrometheus | undefined;
  afterEach(async () => {
    await prom?.stop();
    prom = undefined;
  });

  it('gives Prometheus per-pool request counts and latency histograms from the proxy', async () => {
    const target = await h.target();
    await target.provision({ pool: 'stable', version: 'v1', replicas: 1 });
    await target.provision({ pool: 'canary', version: 'v2', replicas: 1 });
    await target.route({ stable: 80, canary: 20 });
    const url = await target.endpoint();
    for (let i = 0; i < 50; i++) await (await fetch(`${url}/api/v1/search?q=p`)).arrayBuffer();
    prom = await startPrometheus([{ address: new URL(await target.metricsUrl()).host }]);
    const query = 'sum by (pool) (codegraph_proxy_requests_total{code="200"})';
    await prom.waitFor(query);
    const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(query)}`);
    const body = (await res.json()) as {
      data: { result: { metric: { pool: string }; value: [number, string] }[] };
    };
    const byPool = Object.fromEntries(body.data.result.map((r) => [r.metric.pool, Number(r.value[1])]));
    expect(byPool).toEqual({ stable: 40, canary: 10 });
    await prom.waitFor('codegraph_proxy_request_duration_seconds_count{pool="canary"} == 10');
  });
});

describe('localTarget: adoption, crashes and cleanup', () => {
  it('lets a second instance on the same stateDir adopt the proxy and replicas', async () => {
    const stateDir = await h.dir();
    const first = await h.target({ stateDir });
    await first.provision({ pool: 'v1', version: 'v1', replicas: 2 });
    await first.route({ v1: 100 });
    const url = await first.endpoint();
    const pids = await recordedPids(stateDir);
    await first.close();
    const second = await h.target({ stateDir });
    expect(await second.describe()).toEqual(await first.describe());
    expect(await second.endpoint()).toBe(url);
    await second.provision({ pool: 'v1', version: 'v1', replicas: 2 });
    expect(await recordedPids(stateDir)).toEqual(pids);
    await second.provision({ pool: 'v2', version: 'v2', replicas: 1 });
    await second.route({ v2: 100 });
    expect(await countBy(`${url}/health`, 3)).toEqual({ v2: 3 });
  });

  it('starts one proxy when two instances on one stateDir need it at the same moment', async () => {
    const stateDir = await h.dir();
    const [a, b] = [await h.target({ stateDir }), await h.target({ stateDir })];
    const [urlA, urlB] = await Promise.all([a.endpoint(), b.endpoint()]);
    expect(urlA).toBe(urlB);
    expect(await processesUsing(stateDir)).toEqual(await recordedPids(stateDir));
    expect(await recordedPids(stateDir)).toHaveLength(1);
  });

  it('reports a proxy that runs but does not answer as unavailable, and never starts a second one', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir });
    const url = await target.endpoint();
    const [proxyPid] = await recordedPids(stateDir);
    process.kill(proxyPid!, 'SIGSTOP');
    try {
      const err = await rejection(target.endpoint());
      expect(err.code).toBe('CG_TARGET_UNAVAILABLE');
      expect(err.retryable).toBe(true);
      expect(await processesUsing(stateDir)).toEqual([proxyPid]);
    } finally {
      process.kill(proxyPid!, 'SIGCONT');
    }
    expect(await target.endpoint()).toBe(url);
  });

  it('brings a killed proxy back on the same port with the same routes', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir });
    await target.provision({ pool: 'a', version: 'v1', replicas: 1 });
    await target.provision({ pool: 'b', version: 'v2', replicas: 1 });
    await target.route({ a: 75, b: 25 });
    const url = await target.endpoint();
    const proxyPid = (await recordedPids(stateDir)).at(-1)!;
    process.kill(proxyPid, 'SIGKILL');
    await until(() => !alive(proxyPid));
    expect((await target.describe()).endpoint).toBeUndefined();
    expect(await target.endpoint()).toBe(url);
    expect((await recordedPids(stateDir)).at(-1)).not.toBe(proxyPid);
    expect(await countBy(`${url}/health`, 8)).toEqual({ a: 6, b: 2 });
  });

  it('destroy() stops every replica and the proxy and leaves no process behind', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir });
    await target.provision({ pool: 'a', version: 'v1', replicas: 2 });
    await target.provision({ pool: 'b', version: 'v2', replicas: 1 });
    await target.route({ a: 100 });
    const pids = await recordedPids(stateDir);
    expect(pids).toHaveLength(4);
    expect(pids.every(alive)).toBe(true);
    expect((await processesUsing(stateDir)).sort()).toEqual([...pids].sort());
    await target.destroy();
    expect(pids.filter(alive)).toEqual([]);
    expect(await processesUsing(stateDir)).toEqual([]);
    expect(await recordedPids(stateDir)).toEqual([]);
    expect((await target.describe()).pools).toEqual([]);
    await target.destroy();
  });
});

describe('localTarget: from the built package (ESM and CommonJS)', () => {
  const coreDir = fileURLToPath(new URL('..', import.meta.url));
  const repoRoot = path.join(coreDir, '..', '..');
  let built = '';
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    built = await mkdtemp(path.join(tmpdir(), 'cg-core-built-'));
    // The bundles import undici and prom-client: let them resolve from the repository's node_modules.
    await symlink(path.join(repoRoot, 'node_modules'), path.join(built, 'node_modules'), 'dir');
    const tsup = path.join(repoRoot, 'node_modules', '.bin', 'tsup');
    await run(tsup, ['--out-dir', path.join(built, 'dist'), '--no-dts'], { cwd: coreDir });
  }, 120_000);
  afterEach(async () => {
    for (const child of children.splice(0))
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  afterAll(async () => {
    if (built) await rm(built, { recursive: true, force: true });
  });

  /** Runs a script next to the build; resolves with its first stdout line (JSON). */
  async function engine(file: string, source: string, stateDir: string) {
    await writeFile(path.join(built, file), source);
    const child = spawn(process.execPath, [path.join(built, file), stateDir, sampleServerPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    h.pids.add(child.pid!);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    await until(() => out.includes('\n') || child.exitCode !== null, 30_000, `${file} to report`);
    if (!out.includes('\n')) throw new Error(`${file} exited ${child.exitCode}: ${err}`);
    return { child, line: JSON.parse(out.split('\n')[0]!) as Record<string, unknown> };
  }

  const command = `({ version, port }) => ({ command: process.execPath, args: [process.argv[3], '--port', String(port), '--version', version] })`;

  it('keeps serving when the engine is SIGKILLed mid-release, and a new instance adopts everything', async () => {
    const stateDir = await h.dir();
    const { child, line } = await engine(
      'engine.mjs',
      `import { localTarget } from './dist/index.js';
const target = localTarget({ stateDir: process.argv[2], command: ${command} });
await target.provision({ pool: 'v1', version: 'v1', replicas: 2 });
await target.route({ v1: 100 });
await target.provision({ pool: 'v2', version: 'v2', replicas: 1 });
await target.route({ v1: 50, v2: 50 });
console.log(JSON.stringify({ endpoint: await target.endpoint() }));
setInterval(() => {}, 60_000); // an engine mid-release, until it is killed
`,
      stateDir,
    );
    const pids = await recordedPids(stateDir);
    expect(pids).toHaveLength(4);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    expect(pids.every(alive)).toBe(true);
    const url = line.endpoint as string;
    expect(await countBy(`${url}/health`, 10)).toEqual({ v1: 5, v2: 5 });

    const adopter = await h.target({ stateDir });
    const state = await adopter.describe();
    expect(state.endpoint).toBe(url);
    expect(state.pools.map((p) => [p.name, p.ready, p.weight])).toEqual([
      ['v1', 2, 50],
      ['v2', 1, 50],
    ]);
    await adopter.provision({ pool: 'v1', version: 'v1', replicas: 2 });
    await adopter.provision({ pool: 'v2', version: 'v2', replicas: 1 });
    expect(await recordedPids(stateDir)).toEqual(pids);
    await adopter.route({ v2: 100 });
    await adopter.retire('v1');
    expect(await countBy(`${url}/health`, 4)).toEqual({ v2: 4 });
    await adopter.destroy();
    expect(pids.filter(alive)).toEqual([]);
  });

  it('runs from the CommonJS build, finding its proxy next to the bundle', async () => {
    const stateDir = await h.dir();
    const { child, line } = await engine(
      'engine.cjs',
      `const { readFileSync } = require('node:fs');
const { localTarget } = require('./dist/index.cjs');
(async () => {
  const target = localTarget({ stateDir: process.argv[2], command: ${command} });
  await target.provision({ pool: 'cjs', version: 'v7', replicas: 1 });
  await target.route({ cjs: 100 });
  const res = await fetch((await target.endpoint()) + '/health');
  const proxy = JSON.parse(readFileSync(process.argv[2] + '/proxy.json', 'utf8'));
  const line = { pool: res.headers.get('x-codegraph-pool'), body: await res.json(), proxyPid: proxy.pid };
  await target.destroy();
  console.log(JSON.stringify(line));
})().catch((err) => { console.error(err); process.exit(1); });
`,
      stateDir,
    );
    await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(null)));
    expect(child.exitCode).toBe(0);
    expect(line).toMatchObject({ pool: 'cjs', body: { status: 'healthy', version: 'v7' } });
    const body = line.body as { pid: number };
    expect(alive(body.pid)).toBe(false);
    expect(alive(line.proxyPid as number)).toBe(false);
  });
});
