import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createPipeline, silentLogger } from '../src/index.js';
import { pipelineEnv } from './helpers/pipeline-env.js';

const MIN = 60_000;
const approveChild = fileURLToPath(new URL('./fixtures/approve-child.mjs', import.meta.url));
let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups) await fn();
  cleanups = [];
});
async function env() {
  const e = await pipelineEnv({
    production: { approval: { required: 2, approvers: ['alice', 'bob', 'carol'], expiresAfterMs: 60 * MIN } },
  });
  cleanups.push(e.cleanup);
  return e;
}

describe('pipeline: approvals', () => {
  it('production needs 2 of 3 approvers: duplicates and strangers are refused, expired approvals do not count', async () => {
    const e = await env();
    const done = e.pipeline.promote('v1');
    await e.until((ev) => ev.type === 'pipeline.waiting' && ev.stage === 'production');
    const approve = (by: string, version = 'v1') => e.pipeline.approve({ stage: 'production', version, by });

    expect(await approve('alice')).toMatchObject({ applied: true });
    expect(await approve('alice')).toMatchObject({
      applied: false,
      message: expect.stringContaining('already approved'),
    });
    expect(await approve('mallory')).toMatchObject({
      applied: false,
      message: 'mallory is not an approver of production',
    });
    expect(await approve('bob', 'v9')).toMatchObject({
      applied: false,
      message: expect.stringContaining('promotes v1'),
    });
    expect((await e.pipeline.status()).stages[1]!.approvals.map((a) => a.by)).toEqual(['alice']);

    // An hour later alice's approval has expired: bob's alone is 1 of 2, and production still waits.
    e.clock.advance(61 * MIN);
    expect(await approve('bob')).toMatchObject({ applied: true });
    await new Promise((r) => setTimeout(r, 300));
    const status = await e.pipeline.status();
    expect(status.stages[1]).toMatchObject({ state: 'waiting' });
    expect(status.stages[1]!.approvals.map((a) => a.by)).toEqual(['bob']);
    expect(status.stages[1]!.waitingFor[0]!.detail).toContain('approvals 1 of 2 needed (bob)');
    expect((await e.production.engine.status()).serving).toBeUndefined();

    // alice approves again: two unexpired approvals, production goes.
    expect(await approve('alice')).toMatchObject({ applied: true });
    expect(await done).toMatchObject({ status: 'succeeded', reached: 'production' });
    expect(await e.serving(e.production)).toBe('v1');

    const journal = await e.store.read((await done).runId);
    const approvals = journal.filter((j) => j.type === 'note' && j.message === 'approval');
    expect(approvals.map((j) => (j as { data: { by: string } }).data.by)).toEqual(['alice', 'bob', 'alice']);
    const refused = journal.filter((j) => j.type === 'note' && j.message === 'approval-refused');
    expect(refused).toHaveLength(3);
    // Once the pipeline has finished nobody answers: the approval is withdrawn, not left behind.
    expect(
      await e.pipeline.approve({ stage: 'production', version: 'v1', by: 'carol', timeoutMs: 1_500 }),
    ).toBeUndefined();
  });

  it('approvals sent by other processes reach a waiting pipeline', async () => {
    const e = await env();
    const done = e.pipeline.promote('v1');
    await e.until((ev) => ev.type === 'pipeline.waiting' && ev.stage === 'production');
    const storeDir = join(e.dir, 'pipeline-store');
    const run = (by: string) =>
      promisify(execFile)(process.execPath, [approveChild, storeDir, 'production', 'v1', by]);
    const [carol, bob] = await Promise.all([run('carol'), run('bob')]);
    expect(JSON.parse(carol.stdout)).toMatchObject({
      applied: true,
      message: 'carol approved production@v1',
    });
    expect(JSON.parse(bob.stdout)).toMatchObject({ applied: true, message: 'bob approved production@v1' });
    expect(await done).toMatchObject({ status: 'succeeded', reached: 'production' });
    const approvals = e.events.filter((ev) => ev.type === 'pipeline.approval');
    expect(approvals.map((a) => (a as { by: string }).by).sort()).toEqual(['bob', 'carol']);
  });

  it('one process drives a pipeline at a time, and an abort request ends a waiting run', async () => {
    const e = await env();
    const done = e.pipeline.promote('v1');
    await e.until((ev) => ev.type === 'pipeline.waiting' && ev.stage === 'production');
    const second = createPipeline({
      name: 'search',
      store: e.store,
      logger: silentLogger,
      stages: [
        { name: 'staging', engine: e.staging.engine },
        { name: 'production', engine: e.production.engine },
      ],
    });
    await expect(second.promote('v1')).rejects.toMatchObject({ code: 'CG_ENVIRONMENT_LOCKED' });
    await expect(second.promote('v2')).rejects.toMatchObject({ code: 'CG_RUN_INTERRUPTED' });

    const sent = await e.store.sendControl({
      environment: 'pipeline.search',
      action: 'abort',
      by: 'carol',
      reason: 'error budget spent',
    });
    expect(await e.store.waitForReply('pipeline.search', sent.id, { timeoutMs: 10_000 })).toMatchObject({
      applied: true,
    });
    expect(await done).toMatchObject({
      status: 'failed',
      reason: 'aborted by carol: error budget spent',
      reached: 'staging',
    });
    expect((await e.production.engine.status()).serving).toBeUndefined();
    expect((await e.pipeline.status()).run).toMatchObject({ state: 'finished', status: 'failed' });
    expect(await e.store.lockOwner('pipeline.search')).toBeUndefined();
  });
});
