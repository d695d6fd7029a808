import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent, RetryAgent, request } from 'undici';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { accessLog, countByPool, loadGenerator, NginxHarness, requireNginx, until } from './helpers.js';

beforeAll(requireNginx);

const h = new NginxHarness();
afterEach(async () => {
  expect(await h.cleanup(), 'processes left behind after cleanup').toEqual([]);
});

describe('nginxTarget: routing through a real nginx', () => {
  it('sends exactly 90 of 100 requests to stable and 10 to canary at weights 90/10', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir });
    await target.provision({ pool: 'stable', version: 'v1', replicas: 2 });
    await target.provision({ pool: 'canary', version: 'v2', replicas: 1 });
    await target.route({ stable: 90, canary: 10 });

    const url = await target.endpoint();
    expect(await countByPool(url, 100)).toEqual({ stable: 90, canary: 10 });

    // The upstream splits stable's 90 across its two replicas: 9 + 9 against canary's 2.
    const config = await readFile(path.join(stateDir, 'nginx', 'nginx.conf'), 'utf8');
    expect(config.match(/server 127\.0\.0\.1:\d+ weight=\d+/g)?.map((s) => s.split('=')[1])).toEqual([
      '2',
      '9',
      '9',
    ]);
    expect(config).toContain('proxy_next_upstream error timeout http_502;');
    expect(config).not.toContain('non_idempotent');

    const state = await target.describe();
    expect(state.endpoint).toBe(url);
    expect(Object.fromEntries(state.pools.map((p) => [p.name, [p.weight, p.ready]]))).toEqual({
      stable: [90, 2],
      canary: [10, 1],
    });
  });

  it('leaves a pool at weight 0 out of the upstream and sends it nothing', async () => {
    const target = await h.target();
    await target.provision({ pool: 'blue', version: 'v1', replicas: 1 });
    await target.provision({ pool: 'green', version: 'v2', replicas: 1 });
    await target.route({ blue: 100, green: 0 });
    const url = await target.endpoint();
    expect(await countByPool(url, 20)).toEqual({ blue: 20 });
    await target.route({ green: 100 });
    expect(await countByPool(url, 20)).toEqual({ green: 20 });
    expect((await target.describe()).pools.find((p) => p.name === 'blue')?.weight).toBe(0);
  });

  it('switches weights under continuous load without dropping a request', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir });
    await target.provision({ pool: 'stable', version: 'v1', replicas: 2 });
    await target.provision({ pool: 'canary', version: 'v2', replicas: 2 });
    await target.route({ stable: 100 });
    const url = await target.endpoint();
    const load = loadGenerator(url, 4);
    try {
      await load.more(50);
      const steps: Record<string, number>[] = [
        { stable: 80, canary: 20 },
        { stable: 50, canary: 50 },
        { canary: 100 },
      ];
      for (const weights of steps) {
        await target.route(weights);
        await load.more(100);
      }
    } finally {
      await load.stop();
    }
    expect(load.stats.failures).toEqual([]);
    // Not even a retry inside nginx: every request reached a live replica at the first attempt.
    const log = await accessLog(stateDir);
    expect(log.filter((l) => l.upstreams.length > 1 || l.status !== 200)).toEqual([]);
    expect(load.stats.byPool.stable).toBeGreaterThan(0);
    expect(load.stats.byPool.canary).toBeGreaterThan(0);
    expect(await countByPool(url, 10)).toEqual({ canary: 10 });
  });

  it('takes replicas out of nginx before stopping them when a pool scales down under load', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir });
    await target.provision({ pool: 'stable', version: 'v1', replicas: 3 });
    await target.route({ stable: 100 });
    const url = await target.endpoint();
    const load = loadGenerator(url, 4);
    try {
      await load.more(50);
      await target.provision({ pool: 'stable', version: 'v1', replicas: 1 });
      await load.more(100);
    } finally {
      await load.stop();
    }
    expect(load.stats.failures).toEqual([]);
    // Had a replica stopped while still in the upstream, nginx would have retried on another (two addresses).
    await until(
      async () => (await accessLog(stateDir)).length >= load.stats.ok,
      5_000,
      'access log complete',
    );
    const log = await accessLog(stateDir);
    expect(log.filter((l) => l.upstreams.length > 1 || l.status !== 200)).toEqual([]);
    expect(load.stats.ok).toBe(log.length);
    const stable = (await target.describe()).pools.find((p) => p.name === 'stable');
    expect(stable).toMatchObject({ replicas: 1, ready: 1, weight: 100 });
  });

  it("with client keep-alive on, a reload only closes idle connections: undici's RetryAgent loses nothing", async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir, nginx: { clientKeepaliveS: 75 } });
    await target.provision({ pool: 'stable', version: 'v1', replicas: 1 });
    await target.provision({ pool: 'canary', version: 'v1', replicas: 1 });
    await target.route({ stable: 100 });
    const url = `${await target.endpoint()}/api/v1/search?q=graph`;
    // RFC 9112 9.3.1: an idempotent request whose connection closed before any response may be retried;
    // RetryAgent does so for GET on UND_ERR_SOCKET / ECONNRESET.
    const agent = new RetryAgent(new Agent(), { maxRetries: 1, minTimeout: 0, statusCodes: [] });
    const stats = { ok: 0, failures: [] as string[] };
    let running = true;
    const loops = Array.from({ length: 4 }, async () => {
      while (running) {
        try {
          const res = await request(url, { dispatcher: agent });
          await res.body.dump();
          if (res.statusCode === 200) stats.ok++;
          else stats.failures.push(`HTTP ${res.statusCode}`);
        } catch (err) {
          stats.failures.push(String(err));
        }
      }
    });
    try {
      const steps: Record<string, number>[] = [{ stable: 50, canary: 50 }, { canary: 100 }, { stable: 100 }];
      for (const weights of steps) {
        const before = stats.ok;
        await target.route(weights);
        await until(() => stats.ok >= before + 100 || stats.failures.length > 0, 15_000, '100 more answers');
      }
    } finally {
      running = false;
      await Promise.all(loops);
      await agent.close();
    }
    expect(stats.failures).toEqual([]);
    // nginx writes a log line after the response has gone out: wait for the last lines to land.
    await until(async () => (await accessLog(stateDir)).length >= stats.ok, 5_000, 'access log complete');
    const log = await accessLog(stateDir);
    expect(log.filter((l) => l.status !== 200)).toEqual([]);
    expect(Math.max(...log.map((l) => l.connectionRequests)), 'connections were reused').toBeGreaterThan(1);
    // Every answer nginx logged reached the client: nothing was answered twice or lost after nginx read it.
    expect(log.length).toBe(stats.ok);
  });
});
