import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileStore, type Store, StoreError } from '../src/index.js';
import { releaseEnv } from './helpers/release-env.js';

type Env = Awaited<ReturnType<typeof releaseEnv>>;
let env: Env | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

describe('a damaged journal is reported, never in the way', () => {
  it('a garbage line in another run’s journal never blocks status, an emergency rollback or a release', async () => {
    env = await releaseEnv();
    const v1 = await env.engine.release({ version: 'v1' });
    await env.engine.release({ version: 'v2' });
    // Damage v1's journal in the middle, as a bad disk or a hand edit would.
    const file = join(env.dir, 'store', 'runs', `${v1.runId}.jsonl`);
    const lines = (await fs.readFile(file, 'utf8')).split('\n');
    lines.splice(2, 0, '{"seq": 3, "type": "step-fini\u0000\u0000garbage');
    await fs.writeFile(file, lines.join('\n'));

    const engine = env.make();
    const status = await engine.status();
    expect(status.serving).toBe('v2');
    const back = await engine.rollback({ to: 'v1', reason: 'v2 pages', confirm: 'CONFIRM' });
    expect(back).toMatchObject({ status: 'succeeded', serving: 'v1' });
    const again = await engine.release({ version: 'v3' });
    expect(again).toMatchObject({ status: 'succeeded', serving: 'v3' });
    expect(await env.serving()).toBe('v3');
  });

  it('runs the store cannot list are reported by status, and an emergency rollback still proceeds', async () => {
    env = await releaseEnv();
    await env.engine.release({ version: 'v1' });
    await env.engine.release({ version: 'v2' });
    const files = fileStore({ dir: join(env.dir, 'store') });
    const unlistable: Store = {
      ...files,
      async runs() {
        throw new StoreError('journal runs/staging-x.jsonl is corrupt at line 7');
      },
    };
    const engine = env.make({ store: unlistable });
    const status = await engine.status();
    expect(status.serving).toBe('v2');
    expect(status.problems).toEqual([expect.stringContaining('corrupt at line 7')]);
    const back = await engine.rollback({ to: 'v1', reason: 'v2 pages', confirm: 'CONFIRM' });
    expect(back).toMatchObject({ status: 'succeeded', serving: 'v1' });
    // The run journals what it could not read.
    const notes = (await files.read(back.runId)).filter(
      (e) => e.type === 'note' && e.message !== 'analysis.measured',
    );
    expect(notes).toEqual([
      expect.objectContaining({ message: expect.stringContaining('corrupt at line 7') }),
    ]);
  });

  it('an interrupted run whose journal refuses the supersede line is noted, and the rollback goes on', async () => {
    env = await releaseEnv();
    await env.engine.release({ version: 'v1' });
    await env.engine.release({ version: 'v2' });
    const files = fileStore({ dir: join(env.dir, 'store') });
    // A run whose process died after its header: interrupted.
    const dead = 'staging-20260101T000000-dead00';
    await files.append(dead, {
      type: 'run',
      header: {
        runId: dead,
        kind: 'release',
        environment: 'staging',
        version: 'v9',
        startedAt: new Date().toISOString(),
        strategy: 'rolling',
        target: env.target.name,
      },
    });
    const refusing: Store = {
      ...files,
      async append(runId, entry, fence) {
        if (runId === dead) throw new StoreError(`journal of ${dead} is damaged: write refused`);
        return files.append(runId, entry, fence);
      },
    };
    const engine = env.make({ store: refusing });
    expect((await engine.status()).interrupted.map((r) => r.runId)).toEqual([dead]);
    const back = await engine.rollback({ to: 'v1', reason: 'v2 pages', confirm: 'CONFIRM' });
    expect(back).toMatchObject({ status: 'succeeded', serving: 'v1' });
    const notes = (await files.read(back.runId)).filter(
      (e) => e.type === 'note' && e.message !== 'analysis.measured',
    );
    expect(notes).toEqual([
      expect.objectContaining({ message: expect.stringContaining(`could not mark run ${dead}`) }),
    ]);
  });
});
