import type { ControlRequest } from '@codegraph/release-core';
import { describe, expect, it } from 'vitest';
import { useSchemas } from './helpers/schemas.js';

// Control requests through PostgreSQL: sent, consumed exactly once in order, answered, withdrawn,
// expired and validated both ways. One server for the file, one schema per test.
const { fresh, sql } = useSchemas('control_requests');

describe('control requests', () => {
  const received = () => {
    const seen: ControlRequest[] = [];
    return {
      seen,
      handler: async (r: ControlRequest) => {
        seen.push(r);
        return { applied: true, message: `did ${r.action}` };
      },
    };
  };

  it('delivers each request once, in order, across two watchers on two stores, and stores the reply', async () => {
    const { store, make } = fresh();
    const a = received();
    const b = received();
    const wa = await store.watchControl('staging', 'run-1', a.handler);
    const wb = await make().watchControl('staging', 'run-1', b.handler);
    const sender = make();
    const sent: ControlRequest[] = [];
    for (let i = 0; i < 20; i++) {
      sent.push(
        await sender.sendControl({
          environment: 'staging',
          runId: 'run-1',
          action: i % 2 ? 'abort' : 'promote',
          reason: `r${i}`,
        }),
      );
    }
    const replies = await Promise.all(
      sent.map((r) => sender.waitForReply('staging', r.id, { timeoutMs: 10_000 })),
    );
    expect(replies.every((r) => r?.applied === true && r.runId === 'run-1')).toBe(true);
    const all = [...a.seen, ...b.seen].map((r) => r.id);
    expect(all.sort()).toEqual(sent.map((r) => r.id).sort());
    // Each watcher saw its share in the order sent.
    for (const seen of [a.seen, b.seen]) {
      const order = seen.map((r) => sent.findIndex((s) => s.id === r.id));
      expect(order).toEqual([...order].sort((x, y) => x - y));
    }
    expect(replies[0]).toMatchObject({ action: 'promote', message: 'did promote' });
    await wa.stop();
    await wb.stop();
  });

  it('delivers requests sent before the watch began, and not those for another run or environment', async () => {
    const { store, make } = fresh();
    const sender = make();
    const mine = await sender.sendControl({ environment: 'staging', action: 'promote', full: true });
    await sender.sendControl({ environment: 'staging', runId: 'run-other', action: 'abort' });
    await sender.sendControl({ environment: 'production', action: 'abort' });
    const r = received();
    const watch = await store.watchControl('staging', 'run-1', r.handler);
    expect(await sender.waitForReply('staging', mine.id, { timeoutMs: 5_000 })).toMatchObject({
      applied: true,
    });
    await new Promise((res) => setTimeout(res, 300));
    expect(r.seen.map((x) => [x.action, x.full])).toEqual([['promote', true]]);
    await watch.stop();
  });

  it('many watchers started at once each get the requests sent for them before they began, and only those', async () => {
    const { store, make } = fresh();
    const sender = make();
    const envs = Array.from({ length: 60 }, (_, i) => `env-${i}`);
    const sent = new Map<string, string[]>();
    for (const [i, env] of envs.entries()) {
      const ids: string[] = [];
      for (let n = 0; n < i % 3; n++)
        ids.push((await sender.sendControl({ environment: env, action: 'promote' })).id);
      await sender.sendControl({ environment: env, runId: `run-other-${i}`, action: 'abort' });
      sent.set(env, ids);
    }
    const got = new Map(envs.map((env) => [env, received()]));
    // Started together, their first scans go out coalesced.
    const watches = await Promise.all(
      envs.map((env, i) => store.watchControl(env, `run-${i}`, got.get(env)!.handler)),
    );
    for (const env of envs)
      for (const id of sent.get(env)!)
        expect(await sender.waitForReply(env, id, { timeoutMs: 5_000 })).toMatchObject({ applied: true });
    for (const env of envs) {
      expect(got.get(env)!.seen.map((r) => r.id)).toEqual(sent.get(env));
      expect(got.get(env)!.seen.every((r) => r.environment === env && r.action === 'promote')).toBe(true);
    }
    for (const w of watches) await w.stop();
  });

  it('withdraw and consume: exactly one wins', async () => {
    const { store, make } = fresh();
    const sender = make();
    const req = await sender.sendControl({ environment: 'staging', action: 'abort', reason: 'oops' });
    expect(await sender.withdrawControl('staging', req.id)).toBe(true);
    expect(await sender.withdrawControl('staging', req.id)).toBe(false);
    const r = received();
    const watch = await store.watchControl('staging', 'run-1', r.handler);
    const later = await sender.sendControl({ environment: 'staging', action: 'promote' });
    await sender.waitForReply('staging', later.id, { timeoutMs: 5_000 });
    expect(await sender.withdrawControl('staging', later.id)).toBe(false);
    expect(r.seen.map((x) => x.id)).toEqual([later.id]);
    expect(await sender.waitForReply('staging', req.id, { timeoutMs: 2_000 })).toBeUndefined();
    await watch.stop();
  });

  it('refuses a request that fails validation when read back, and goes on with the next one', async () => {
    const { schema, store, make } = fresh();
    await store.runs(); // the schema is made on first use
    await sql(
      `INSERT INTO "${schema}".control (id, environment, action, created_at) VALUES ('badbadbad1', 'staging', 'rm -rf', now())`,
    );
    const sender = make();
    const good = await sender.sendControl({
      environment: 'staging',
      action: 'approve',
      by: 'alice',
      subject: 'production@v1.2.3',
    });
    const r = received();
    const watch = await store.watchControl('staging', 'run-1', r.handler);
    expect(await sender.waitForReply('staging', good.id, { timeoutMs: 5_000 })).toMatchObject({
      applied: true,
    });
    expect(await sender.waitForReply('staging', 'badbadbad1', { timeoutMs: 1_000 })).toMatchObject({
      applied: false,
      message: expect.stringContaining('action'),
    });
    expect(r.seen.map((x) => x.id)).toEqual([good.id]);
    await watch.stop();
  });

  it('refuses as expired a request nobody consumed in time, so it never steers a later run', async () => {
    const { store, make } = fresh({ controlExpiryMs: 1_000 });
    const sender = make();
    const stale = await sender.sendControl({ environment: 'staging', action: 'abort', reason: 'yesterday' });
    await new Promise((r) => setTimeout(r, 1_100));
    const fresh1 = await sender.sendControl({ environment: 'staging', action: 'promote' });
    const r = received();
    const watch = await store.watchControl('staging', 'run-later', r.handler);
    expect(await sender.waitForReply('staging', fresh1.id, { timeoutMs: 5_000 })).toMatchObject({
      applied: true,
    });
    expect(await sender.waitForReply('staging', stale.id, { timeoutMs: 1_000 })).toMatchObject({
      applied: false,
      message: expect.stringContaining('expired'),
    });
    expect(r.seen.map((x) => x.id)).toEqual([fresh1.id]);
    await watch.stop();
  });

  it('refuses a bad request before storing anything', async () => {
    const { store } = fresh();
    const bad = [
      { environment: 'staging', action: 'reboot' },
      { environment: '../etc', action: 'abort' },
      { environment: 'staging', action: 'abort', reason: 'x'.repeat(1_001) },
      { environment: 'staging', action: 'approve', by: 'alice; drop table' },
      { environment: 'staging', action: 'abort', full: true },
    ];
    for (const b of bad) {
      await expect(store.sendControl(b as never)).rejects.toMatchObject({ code: 'CG_CONTROL_INVALID' });
    }
    const r = received();
    const watch = await store.watchControl('staging', 'run-1', r.handler);
    await new Promise((res) => setTimeout(res, 300));
    expect(r.seen).toEqual([]);
    await watch.stop();
  });

  it('waitForReply never waits longer than asked', async () => {
    const { store } = fresh();
    const req = await store.sendControl({ environment: 'staging', action: 'abort' });
    const started = Date.now();
    expect(await store.waitForReply('staging', req.id, { timeoutMs: 300 })).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1_000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    expect(
      await store.waitForReply('staging', req.id, { timeoutMs: 10_000, signal: ac.signal }),
    ).toBeUndefined();
  });
});
