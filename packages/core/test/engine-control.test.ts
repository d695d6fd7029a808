import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileStore, type ReleaseEvent, rolling, type Strategy } from '../src/index.js';
import { releaseEnv } from './helpers/release-env.js';

// Control is data: requests sent through another instance of the store (as another process would)
// reach the run in progress, which journals what it did.
let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** Rolling with two manual pauses before it starts. */
function paused(): Strategy {
  const inner = rolling({ maxSurge: 1, maxUnavailable: 0 });
  return {
    name: 'paused-rolling',
    *deploy(input) {
      yield { type: 'pause', reason: 'first look' };
      yield { type: 'pause', reason: 'second look' };
      yield* inner.deploy(input);
    },
    undo: (input) => inner.undo(input),
  };
}

const pauses = (events: ReleaseEvent[], runId: string) =>
  events.filter((e) => e.runId === runId && e.type === 'action.started' && e.action.type === 'pause').length;

async function until(check: () => boolean, ms = 20_000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('control requests through the store reach the run in progress', () => {
  it('passes exactly one pause per promote request, and journals each request', {
    timeout: 60_000,
  }, async () => {
    const env = await releaseEnv();
    cleanups.push(() => env.cleanup());
    await env.engine.release({ version: 'v1' });
    const engine = env.make({ strategy: paused() });
    const run = engine.release({ version: 'v2' });
    const remote = fileStore({ dir: join(env.dir, 'store') });
    await until(() => env.events.some((e) => e.type === 'action.started' && e.action.type === 'pause'));
    const owner = await remote.lockOwner('staging');
    const first = await remote.sendControl({
      environment: 'staging',
      runId: owner!.runId,
      action: 'promote',
    });
    expect(await remote.waitForReply('staging', first.id, { timeoutMs: 10_000 })).toMatchObject({
      applied: true,
      runId: owner!.runId,
    });
    await until(() => pauses(env.events, owner!.runId) === 2);
    await new Promise((r) => setTimeout(r, 500));
    expect(pauses(env.events, owner!.runId)).toBe(2); // still waiting at the second pause: one request, one pause
    const approve = await remote.sendControl({ environment: 'staging', action: 'approve', by: 'alice' });
    expect(await remote.waitForReply('staging', approve.id, { timeoutMs: 10_000 })).toMatchObject({
      applied: false,
    });
    const second = await remote.sendControl({ environment: 'staging', action: 'promote' });
    expect(await remote.waitForReply('staging', second.id, { timeoutMs: 10_000 })).toMatchObject({
      applied: true,
    });
    const result = await run;
    expect(result).toMatchObject({ status: 'succeeded', serving: 'v2' });
    const notes = (await remote.read(result.runId))
      .filter((e) => e.type === 'note')
      .map((e) => e.type === 'note' && e.message);
    expect(notes.filter((m) => /requested from another process/.test(String(m)))).toHaveLength(3);
    await engine.close();
  });

  it('an emergency rollback from another engine supersedes the running release and takes the environment', {
    timeout: 90_000,
  }, async () => {
    const env = await releaseEnv();
    cleanups.push(() => env.cleanup());
    await env.engine.release({ version: 'v1' });
    const releasing = env.make({ strategy: paused() });
    const run = releasing.release({ version: 'v2' });
    await until(() => env.events.some((e) => e.type === 'action.started' && e.action.type === 'pause'));
    // Another engine with its own store instance: nothing in-process connects it to the release.
    const other = env.make({ store: fileStore({ dir: join(env.dir, 'store') }) });
    const rollback = await other.rollback({ to: 'v1', reason: 'search is broken', confirm: 'CONFIRM' });
    expect(rollback).toMatchObject({ kind: 'rollback', status: 'succeeded', serving: 'v1' });
    const superseded = await run;
    expect(superseded.status).not.toBe('succeeded');
    expect(superseded.reason ?? superseded.error?.message).toMatch(
      /superseded by an emergency rollback: search is broken/,
    );
    expect(await env.serving()).toBe('v1');
    await Promise.all([releasing.close(), other.close()]);
  });
});
