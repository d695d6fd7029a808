import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import {
  fileStore,
  type Notifier,
  type ReleaseEvent,
  rolling,
  type Store,
  type Target,
  type Verifier,
} from '../src/index.js';
import { releaseEnv } from './helpers/release-env.js';

type Env = Awaited<ReturnType<typeof releaseEnv>>;
let env: Env | undefined;
let server: http.Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
  await env?.cleanup();
  env = undefined;
});

/** A destination that accepts requests and never answers them. */
async function deafServer() {
  const received: http.IncomingMessage[] = [];
  server = http.createServer((req) => void received.push(req));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
}

/** An in-house notifier as people write them: a raw http.request that ignores its AbortSignal. */
function rawHttpNotifier(url: string) {
  const state = { started: 0, settled: 0 };
  const notifier: Notifier = {
    name: 'inhouse-webhook',
    notify: (event) =>
      new Promise<void>((resolve, reject) => {
        state.started++;
        const req = http.request(
          url,
          { method: 'POST', headers: { 'content-type': 'application/json' } },
          (res) => {
            res.resume();
            res.on('end', () => {
              state.settled++;
              resolve();
            });
          },
        );
        req.on('error', (err) => {
          state.settled++;
          reject(err);
        });
        req.end(JSON.stringify({ type: event.type }));
      }),
  };
  return { notifier, state };
}

const abandoned = (events: ReleaseEvent[]) =>
  events.flatMap((e) => (e.type === 'plugin.abandoned' ? [e] : []));

describe('bounds that a plugin cannot break', () => {
  it('a notifier that never answers cannot hold the lock, delay a release, or block an emergency rollback', async () => {
    env = await releaseEnv();
    const deaf = await deafServer();
    const { notifier, state } = rawHttpNotifier(deaf.url);
    // Deliveries may take a minute; close() waits at most 300 ms for them.
    const engine = env.make({
      notifiers: [notifier],
      delivery: { timeoutMs: 60_000, retry: { retries: 0 } },
      deadlines: { closeMs: 300 },
    });
    const store = fileStore({ dir: join(env.dir, 'store') });

    const first = await engine.release({ version: 'v1' });
    expect(first.status).toBe('succeeded');
    // The release returned while its deliveries still hang: the lock did not wait for them.
    expect(state.started).toBeGreaterThan(0);
    expect(state.settled).toBe(0);
    expect(await store.lockOwner('staging')).toBeUndefined();

    expect((await engine.release({ version: 'v2' })).status).toBe('succeeded');
    // An emergency rollback from the same engine proceeds while every delivery still hangs...
    const back = await engine.rollback({ to: 'v1', reason: 'pages at 50 %', confirm: 'CONFIRM' });
    expect(back).toMatchObject({ kind: 'rollback', status: 'succeeded', serving: 'v1' });
    expect(await store.lockOwner('staging')).toBeUndefined();
    // ...and so does one from another engine on the same store.
    const other = env.make();
    const again = await other.rollback({ to: 'v2', reason: 'v1 was fine after all', confirm: 'CONFIRM' });
    expect(again).toMatchObject({ status: 'succeeded', serving: 'v2' });
    expect(await env.serving()).toBe('v2');
    expect(deaf.received.length).toBeGreaterThan(0);

    // drain() and close() return within their own bound although no delivery ever settled.
    await engine.drain();
    expect(state.settled).toBe(0);
    await engine.close();
    expect(state.settled).toBe(0);
  });

  it('a verifier and a notifier that ignore their signal are abandoned at the engine deadline and reported', async () => {
    env = await releaseEnv();
    const deaf = await deafServer();
    const { notifier } = rawHttpNotifier(deaf.url);
    const stuck: Verifier = { name: 'stuck', verify: () => new Promise(() => {}) };
    const registry = new Registry();
    const engine = env.make({
      verifiers: [stuck],
      notifiers: [{ ...notifier, events: ['run.finished'] }],
      delivery: { timeoutMs: 200, retry: { retries: 0 } },
      deadlines: { verifierMs: 200, closeMs: 5_000 },
      metrics: { registry },
    });
    const result = await engine.release({ version: 'v1' });
    // A verifier that never answers is an error measurement, never a pass.
    expect(result.status).toBe('failed');
    expect(result.analyses[0]?.verdict).not.toBe('pass');
    await engine.close();
    const calls = abandoned(env.events);
    expect(calls).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          pluginKind: 'verifier',
          plugin: 'stuck',
          method: 'verify',
          reason: 'deadline',
          runId: result.runId,
        }),
        expect.objectContaining({ pluginKind: 'notifier', plugin: 'inhouse-webhook', method: 'notify' }),
      ]),
    );
    for (const c of calls) expect(c.afterMs).toBeGreaterThanOrEqual(150);
    const text = await registry.metrics();
    expect(text).toMatch(
      /codegraph_release_plugin_calls_abandoned_total\{environment="staging",kind="verifier",plugin="stuck",method="verify"\} [1-9]/,
    );
    expect(text).toMatch(/kind="notifier",plugin="inhouse-webhook",method="notify"\} 1/);
  });

  it('a target call that hangs whatever its signal says never blocks an emergency rollback of the same engine', async () => {
    env = await releaseEnv();
    await env.engine.release({ version: 'v1' });
    await env.engine.release({ version: 'v2' });
    const real = env.target;
    // v3's pool never comes up and the target ignores the signal it is given.
    let provisioning!: () => void;
    const called = new Promise<void>((resolve) => {
      provisioning = resolve;
    });
    const hanging: Target = {
      ...real,
      name: real.name,
      describe: (ctx) => real.describe(ctx),
      provision: (req, ctx) => {
        if (req.version !== 'v3') return real.provision(req, ctx);
        provisioning();
        return new Promise(() => {});
      },
      retire: (pool, ctx) => real.retire(pool, ctx),
      route: (weights, ctx) => real.route!(weights, ctx),
    };
    const engine = env.make({ target: hanging, strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }) });
    const release = engine.release({ version: 'v3' });
    await called;
    const rollback = await engine.rollback({ to: 'v1', reason: 'v3 hangs', confirm: 'CONFIRM' });
    expect(rollback).toMatchObject({ kind: 'rollback', status: 'succeeded', serving: 'v1' });
    expect(await release).toMatchObject({ status: 'rolled-back', error: { code: 'CG_ABORTED' } });
    expect(abandoned(env.events)).toEqual([
      expect.objectContaining({ pluginKind: 'target', method: 'provision v3', reason: 'aborted' }),
    ]);
    expect(await env.serving()).toBe('v1');
  });

  it('a store that stops answering fails the run within deadlines.storeMs, frees the lock, and resume completes it', async () => {
    env = await releaseEnv();
    await env.engine.release({ version: 'v1' });
    const real = fileStore({ dir: join(env.dir, 'store') });
    // The store answers the run's first appends, then never again (a database that stopped answering).
    let answered = 0;
    let hung = 0;
    const stalling = new Proxy(real, {
      get(t, key) {
        if (key === 'name') return 'stalling-store';
        if (key === 'append')
          return (...args: Parameters<Store['append']>) => {
            if (++answered > 3) {
              hung++;
              return new Promise(() => {});
            }
            return t.append(...args);
          };
        const v = Reflect.get(t, key);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    }) as Store;
    const engine = env.make({ store: stalling, deadlines: { storeMs: 300 } });
    const outcome = await engine.release({ version: 'v2' }).then(
      (r) => r.error,
      (e: unknown) => e,
    );
    expect(outcome).toMatchObject({ code: 'CG_STORE_UNAVAILABLE' });
    expect(String((outcome as Error).message)).toContain('stalling-store');
    expect(hung).toBeGreaterThanOrEqual(1);
    expect(env.logger.lines.some((l) => /store stalling-store: append abandoned after \d+ ms/.test(l))).toBe(
      true,
    );
    // Nothing holds the environment, and the interrupted run is finished by a healthy engine.
    expect(await real.lockOwner('staging')).toBeUndefined();
    const interrupted = (await real.runs('staging')).find((r) => r.status === undefined);
    expect(interrupted).toBeDefined();
    const resumed = await env.engine.resume(interrupted!.runId);
    expect(resumed).toMatchObject({ status: 'succeeded', serving: 'v2' });
    expect(await env.serving()).toBe('v2');
  });

  it('close() is bounded even when a notifier never finishes closing', async () => {
    env = await releaseEnv();
    let closing = 0;
    const engine = env.make({
      notifiers: [
        {
          name: 'sticky',
          notify: async () => {},
          close: () => {
            closing++;
            return new Promise(() => {});
          },
        },
      ],
      deadlines: { closeMs: 200 },
    });
    await engine.close();
    expect(closing).toBe(1);
    expect(env.logger.lines.some((l) => l.includes('notifier sticky did not close'))).toBe(true);
  });
});
