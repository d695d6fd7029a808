import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, register as globalRegistry, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { metricsHandler, metricsText } from '../src/index.js';
import { releaseEnv } from './helpers/release-env.js';

type Env = Awaited<ReturnType<typeof releaseEnv>>;
let env: Env | undefined;
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
  await env?.cleanup();
  env = undefined;
});

async function serve(handler: ReturnType<typeof metricsHandler>): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("the engine's metrics on a registry of its own", () => {
  it("keeps each engine's metrics off prom-client's global registry and apart from another engine's", async () => {
    env = await releaseEnv();
    const a = env.make({ metrics: undefined });
    const b = env.make({ metrics: {} });
    expect(a.registry).toBeDefined();
    expect(b.registry).toBeDefined();
    expect(a.registry).not.toBe(b.registry);
    expect(a.registry).not.toBe(globalRegistry);
    expect((await a.release({ version: 'v1' })).status).toBe('succeeded');
    await a.close();
    expect(await a.registry!.metrics()).toMatch(
      /^codegraph_release_runs_total\{environment="staging",kind="release",status="succeeded"\} 1$/m,
    );
    expect(await b.registry!.metrics()).not.toMatch(/codegraph_release_runs_total\{/);
    expect(await globalRegistry.metrics()).not.toContain('codegraph_release_');
    await b.close();
    expect(env.make({ metrics: false }).registry).toBeUndefined();
  });

  it("registers on the caller's registry and serves it beside the platform's own over a real HTTP scrape", async () => {
    env = await releaseEnv();
    const registry = new Registry();
    const platform = new Registry();
    new Counter({ name: 'platform_requests_total', help: 'requests', registers: [platform] }).inc(3);
    const engine = env.make({ metrics: { registry } });
    expect(engine.registry).toBe(registry);
    expect((await engine.release({ version: 'v1' })).status).toBe('succeeded');
    await engine.close();

    const base = await serve(metricsHandler(registry, platform));
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(registry.contentType);
    const body = await res.text();
    expect(body).toMatch(/^# TYPE codegraph_release_runs_total counter$/m);
    expect(body).toMatch(
      /^codegraph_release_runs_total\{environment="staging",kind="release",status="succeeded"\} 1$/m,
    );
    expect(body).toMatch(/^codegraph_release_traffic_weight\{environment="staging",pool="v1"\} 100$/m);
    expect(body).toMatch(/^platform_requests_total 3$/m);
    expect(body).toBe((await metricsText(registry, platform)).body);

    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect((await fetch(`${base}/other`)).status).toBe(404);
    const post = await fetch(`${base}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('answers 500 without details when a collect callback throws', async () => {
    const registry = new Registry();
    new Counter({
      name: 'broken_total',
      help: 'throws on collect',
      registers: [registry],
      collect() {
        throw new Error('secret-in-collect');
      },
    });
    const base = await serve(metricsHandler(registry));
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain('secret-in-collect');
  });
});
