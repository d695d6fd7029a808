import { expect, it } from 'vitest';
import { ReleaseError } from '../errors.js';
import type { ControlOutcome, ControlRequest, ControlRequestInput, Store } from '../store/types.js';

interface ControlSuiteDeps {
  fresh(): Promise<{ store: Store; childEnv: Record<string, string> }>;
  second(f: { store: Store; childEnv: Record<string, string> }): Promise<Store>;
  timeout: number;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ReleaseError) return err.code;
    throw err;
  }
  throw new Error('expected the call to fail with a ReleaseError');
}

const until = async (check: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** A handler that records what it was given and answers applied. */
function recorder(
  answer: (r: ControlRequest) => ControlOutcome = () => ({ applied: true, message: 'done' }),
) {
  const seen: ControlRequest[] = [];
  return {
    seen,
    handler: async (r: ControlRequest) => {
      seen.push(r);
      return answer(r);
    },
  };
}

/** The control half of the store suite (see `testStore`). */
export function controlTests({ fresh, second, timeout }: ControlSuiteDeps): void {
  it("delivers each control request once, in the order sent, and stores the run's answer as the reply", {
    timeout,
  }, async () => {
    const { store } = await fresh();
    const rec = recorder((r) => ({ applied: r.action === 'promote', message: `saw ${r.action}` }));
    const sub = await store.watchControl('production', 'run-1', rec.handler);
    const sent: ControlRequest[] = [];
    const inputs: ControlRequestInput[] = [
      { environment: 'production', runId: 'run-1', action: 'promote' },
      { environment: 'production', action: 'promote', full: true },
      {
        environment: 'production',
        runId: 'run-1',
        action: 'approve',
        by: 'alice',
        subject: 'production@v1.2.3',
      },
      { environment: 'production', runId: 'run-1', action: 'abort', reason: 'latency looks wrong' },
    ];
    for (const input of inputs) sent.push(await store.sendControl(input));
    for (const s of sent) {
      expect(s.id).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
      expect(Number.isFinite(Date.parse(s.createdAt))).toBe(true);
    }
    const replies = await Promise.all(
      sent.map((s) => store.waitForReply('production', s.id, { timeoutMs: 10_000 })),
    );
    expect(rec.seen.map((r) => r.id)).toEqual(sent.map((s) => s.id));
    expect(rec.seen[2]).toMatchObject({ action: 'approve', by: 'alice', subject: 'production@v1.2.3' });
    expect(rec.seen[3]).toMatchObject({ reason: 'latency looks wrong' });
    expect(replies.map((r) => [r?.id, r?.runId, r?.action, r?.applied, r?.message])).toEqual([
      [sent[0]!.id, 'run-1', 'promote', true, 'saw promote'],
      [sent[1]!.id, 'run-1', 'promote', true, 'saw promote'],
      [sent[2]!.id, 'run-1', 'approve', false, 'saw approve'],
      [sent[3]!.id, 'run-1', 'abort', false, 'saw abort'],
    ]);
    await new Promise((r) => setTimeout(r, 500)); // and never again
    expect(rec.seen).toHaveLength(4);
    await sub.stop();
  });

  it('gives each request to exactly one of two watchers of the same run (two processes)', {
    timeout,
  }, async () => {
    const f = await fresh();
    const other = await second(f);
    const a = recorder();
    const b = recorder();
    const subs = [
      await f.store.watchControl('production', 'run-1', a.handler),
      await other.watchControl('production', 'run-1', b.handler),
    ];
    const sent = [];
    for (let i = 0; i < 20; i++)
      sent.push(await f.store.sendControl({ environment: 'production', runId: 'run-1', action: 'promote' }));
    await until(() => a.seen.length + b.seen.length >= 20, 15_000, 'every request to be consumed');
    await new Promise((r) => setTimeout(r, 500));
    const ids = [...a.seen, ...b.seen].map((r) => r.id).sort();
    expect(ids).toEqual(sent.map((s) => s.id).sort());
    await Promise.all(subs.map((s) => s.stop()));
  });

  it('leaves a request addressed to another run to that run', { timeout }, async () => {
    const { store } = await fresh();
    const mine = recorder();
    const theirs = recorder();
    const sub = await store.watchControl('production', 'run-mine', mine.handler);
    const req = await store.sendControl({
      environment: 'production',
      runId: 'run-theirs',
      action: 'abort',
      reason: 'x',
    });
    expect(await store.waitForReply('production', req.id, { timeoutMs: 600 })).toBeUndefined();
    expect(mine.seen).toEqual([]);
    const sub2 = await store.watchControl('production', 'run-theirs', theirs.handler);
    expect(await store.waitForReply('production', req.id, { timeoutMs: 10_000 })).toMatchObject({
      applied: true,
      runId: 'run-theirs',
    });
    expect(theirs.seen.map((r) => r.id)).toEqual([req.id]);
    await Promise.all([sub.stop(), sub2.stop()]);
  });

  it('refuses an unknown action, bad identifiers and an oversized reason before storing anything', {
    timeout,
  }, async () => {
    const { store } = await fresh();
    const bad: unknown[] = [
      { environment: 'production', action: 'reboot' },
      { environment: 'production', action: 'ABORT' },
      { environment: '../production', action: 'abort' },
      { environment: 'production', runId: '../../etc/passwd', action: 'abort' },
      { environment: 'production', action: 'abort', reason: 'x'.repeat(1_001) },
      { environment: 'production', action: 'approve', by: 'alice; rm -rf /' },
      { environment: 'production', action: 'promote', full: 'yes' },
      { environment: 'production', action: 'abort', id: '../../x' },
    ];
    for (const input of bad) {
      expect(await codeOf(store.sendControl(input as ControlRequestInput))).toBe('CG_CONTROL_INVALID');
    }
    expect(await codeOf(store.waitForReply('production', '../../../etc', { timeoutMs: 10 }))).toBe(
      'CG_CONTROL_INVALID',
    );
    expect(await codeOf(store.withdrawControl('production', 'a/b/../c.json'))).toBe('CG_CONTROL_INVALID');
    const rec = recorder();
    const sub = await store.watchControl('production', 'run-1', rec.handler);
    await new Promise((r) => setTimeout(r, 500));
    expect(rec.seen).toEqual([]); // nothing of the refused requests was stored
    await sub.stop();
  });

  it("answers applied: false when the run's handler throws, and goes on with the next request", {
    timeout,
  }, async () => {
    const { store } = await fresh();
    const seen: string[] = [];
    const sub = await store.watchControl('production', 'run-1', async (r) => {
      seen.push(r.action);
      if (r.action === 'approve') throw new Error('pipelines are not wired yet');
      return { applied: true };
    });
    const first = await store.sendControl({ environment: 'production', action: 'approve', by: 'bob' });
    const then = await store.sendControl({ environment: 'production', action: 'abort' });
    const r1 = await store.waitForReply('production', first.id, { timeoutMs: 10_000 });
    const r2 = await store.waitForReply('production', then.id, { timeoutMs: 10_000 });
    expect(r1).toMatchObject({ applied: false });
    expect(r1?.message).toContain('pipelines are not wired yet');
    expect(r2).toMatchObject({ applied: true, action: 'abort' });
    expect(seen).toEqual(['approve', 'abort']);
    await sub.stop();
  });

  it('lets exactly one of a withdraw and a consumer win, every time', { timeout }, async () => {
    const { store } = await fresh();
    const rec = recorder();
    const sub = await store.watchControl('production', 'run-1', rec.handler);
    let withdrawn = 0;
    for (let i = 0; i < 15; i++) {
      const req = await store.sendControl({ environment: 'production', runId: 'run-1', action: 'promote' });
      await new Promise((r) => setTimeout(r, (i * 17) % 160)); // land around the watcher's polls
      const won = await store.withdrawControl('production', req.id);
      if (won) withdrawn++;
      const reply = await store.waitForReply('production', req.id, { timeoutMs: won ? 400 : 10_000 });
      const consumed = rec.seen.filter((r) => r.id === req.id).length;
      if (won) {
        expect(consumed).toBe(0);
        expect(reply).toBeUndefined();
      } else {
        expect(consumed).toBe(1);
        expect(reply?.applied).toBe(true);
      }
      expect(await store.withdrawControl('production', req.id)).toBe(false); // never twice
    }
    expect(withdrawn).toBeGreaterThan(0);
    await sub.stop();
  });

  it('gives up waiting for a reply at its timeout, and stops delivering once unsubscribed', {
    timeout,
  }, async () => {
    const { store } = await fresh();
    const req = await store.sendControl({ environment: 'production', action: 'promote' });
    const started = Date.now();
    expect(await store.waitForReply('production', req.id, { timeoutMs: 300 })).toBeUndefined();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(1_300);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const t0 = Date.now();
    expect(
      await store.waitForReply('production', req.id, { timeoutMs: 30_000, signal: ac.signal }),
    ).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(1_500);
    const rec = recorder();
    const sub = await store.watchControl('production', 'run-1', rec.handler);
    await sub.stop();
    const late = await store.sendControl({ environment: 'production', action: 'abort' });
    await new Promise((r) => setTimeout(r, 500));
    expect(rec.seen.map((r) => r.id)).not.toContain(late.id);
  });
}
