import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type ControlRequest, fileStore, type Store } from '../src/index.js';

// What the file store does with request files it did not write itself: hand-made, hostile, foreign.
let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function setup() {
  const dir = await fs.mkdtemp(join(tmpdir(), 'cg-control-'));
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  const store = fileStore({ dir, controlPollMs: 30 });
  const control = join(dir, 'envs', 'prod', 'control');
  const seen: ControlRequest[] = [];
  const sub = await store.watchControl('prod', 'run-1', async (r) => {
    seen.push(r);
    return { applied: true, message: `${r.action} done` };
  });
  cleanups.push(() => sub.stop());
  const drop = async (name: string, body: unknown) => {
    const file = join(control, 'requests', name);
    await fs.writeFile(file, typeof body === 'string' ? body : JSON.stringify(body));
    return file;
  };
  return { dir, store, control, seen, drop };
}

const request = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  environment: 'prod',
  action: 'promote',
  createdAt: new Date().toISOString(),
  ...extra,
});

const settle = () => new Promise((r) => setTimeout(r, 400));

async function reply(store: Store, id: string) {
  return store.waitForReply('prod', id, { timeoutMs: 5_000 });
}

describe('control request files', () => {
  it('refuses a bad request with a reply, sets it aside, never re-applies it, and still delivers the abort after it', async () => {
    const { store, control, seen, drop } = await setup();
    await drop('0000000000001-bad-json.json', '{"id": "0000000000001-bad-json", "action": "abo');
    await drop('0000000000002-unknown.json', request('0000000000002-unknown', { action: 'reboot' }));
    await drop('0000000000003-mismatch.json', request('0000000000004-other-id'));
    await drop('0000000000005-extra.json', request('0000000000005-extra', { command: 'rm -rf /' }));
    await drop(
      '0000000000006-longreason.json',
      request('0000000000006-longreason', { action: 'abort', reason: 'x'.repeat(1_001) }),
    );
    const abort = await store.sendControl({ environment: 'prod', action: 'abort', reason: 'latency' });
    expect(await reply(store, abort.id)).toMatchObject({ applied: true, action: 'abort' });
    expect(seen.map((r) => r.id)).toEqual([abort.id]); // none of the bad ones reached the run
    for (const id of [
      '0000000000001-bad-json',
      '0000000000002-unknown',
      '0000000000003-mismatch',
      '0000000000005-extra',
      '0000000000006-longreason',
    ]) {
      const r = await reply(store, id);
      expect(r?.applied, id).toBe(false);
      expect(r?.message, id).toMatch(/^refused: /);
      expect(r?.runId, id).toBeUndefined();
    }
    expect((await reply(store, '0000000000002-unknown'))?.action).toBeUndefined(); // an unknown action is not an abort
    expect(await fs.readdir(join(control, 'requests'))).toEqual([]);
    expect((await fs.readdir(join(control, 'rejected'))).length).toBe(5);
    await settle();
    expect(seen).toHaveLength(1);
  });

  it('passes exactly one pause per promote request: a request is consumed once', async () => {
    const { store, control, seen } = await setup();
    const promote = await store.sendControl({ environment: 'prod', runId: 'run-1', action: 'promote' });
    await reply(store, promote.id);
    await settle();
    await settle();
    expect(seen.filter((r) => r.action === 'promote')).toHaveLength(1);
    expect(await fs.readdir(join(control, 'requests'))).toEqual([]);
  });

  it('refuses a request whose file belongs to another user, and one that is a link', async () => {
    const { store, control, seen, drop } = await setup();
    const foreign = await drop(
      '0000000000001-foreign.json',
      request('0000000000001-foreign', { action: 'abort' }),
    );
    await fs.chown(foreign, 4321, 4321); // the tests run as root, like the deploy they stand for
    const target = join(control, '..', 'secret.json');
    await fs.writeFile(target, JSON.stringify(request('0000000000002-link', { action: 'abort' })));
    await fs.symlink(target, join(control, 'requests', '0000000000002-link.json'));
    const r1 = await reply(store, '0000000000001-foreign');
    expect(r1).toMatchObject({ applied: false });
    expect(r1?.message).toMatch(/uid 4321/);
    expect(await reply(store, '0000000000002-link')).toMatchObject({ applied: false });
    expect(seen).toEqual([]);
    expect(await fs.readFile(target, 'utf8')).toContain('0000000000002-link'); // left alone
  });

  it('answers only inside the directory: hostile names are set aside without a reply anywhere', async () => {
    const { dir, store, control, seen, drop } = await setup();
    await drop('..%2F..%2Fescape.json', request('..%2F..%2Fescape'));
    await drop('short.json', request('short'));
    await drop('0000000000001 space.json', request('0000000000001 space'));
    const ok = await store.sendControl({ environment: 'prod', action: 'promote' });
    expect(await reply(store, ok.id)).toMatchObject({ applied: true });
    await settle();
    expect(seen.map((r) => r.id)).toEqual([ok.id]);
    expect(await fs.readdir(join(control, 'replies'))).toEqual([`${ok.id}.json`]);
    expect(await fs.readdir(join(control, 'requests'))).toEqual([]);
    expect((await fs.readdir(dir)).sort()).toEqual(['envs']);
    await expect(store.waitForReply('prod', '../../../../tmp/x', { timeoutMs: 10 })).rejects.toMatchObject({
      code: 'CG_CONTROL_INVALID',
    });
  });

  it('refuses a request nobody consumed in time instead of applying it to a later run', async () => {
    const { store, seen, drop } = await setup();
    const old = new Date(Date.now() - 10 * 60_000).toISOString();
    await drop(
      '0000000000001-stale.json',
      request('0000000000001-stale', { action: 'abort', createdAt: old }),
    );
    await drop(
      '0000000000002-elsewhere.json',
      request('0000000000002-elsewhere', { runId: 'run-9', createdAt: old }),
    );
    expect(await reply(store, '0000000000001-stale')).toMatchObject({
      applied: false,
      message: expect.stringMatching(/expired/),
    });
    expect(await reply(store, '0000000000002-elsewhere')).toMatchObject({
      applied: false,
      message: expect.stringMatching(/expired/),
    });
    expect(seen).toEqual([]);
  });
});
