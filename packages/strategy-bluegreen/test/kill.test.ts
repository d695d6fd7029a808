import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileStore } from '@codegraph/release-core';
import { blueGreen } from '@codegraph/strategy-bluegreen';
import { afterEach, describe, expect, it } from 'vitest';
import { blueGreenEnv, loadGenerator, poolPids, until, viaNginx } from './helpers/env.js';

// The releasing process is SIGKILLed while the old colour is kept warm (the scale-down delay). Its
// replicas and the proxy are detached, so they keep serving; another engine then resumes the run from
// its journal, or rolls back. Both must converge, under load, without a failed request.
// The child runs the BUILT packages (`npm run build` first, as `npm test` does).

const child = fileURLToPath(new URL('./fixtures/release-child.mjs', import.meta.url));
const DELAY_MS = 2_000;
const children: ChildProcess[] = [];
let cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  const errors: unknown[] = [];
  for (const fn of cleanups.reverse()) await fn().catch((err) => errors.push(err));
  cleanups = [];
  if (errors.length > 0) throw errors[0];
});

type Kind = 'local' | 'nginx';

function runChild(dir: string, kind: Kind, verb: 'release' | 'resume', arg: string) {
  const proc = spawn(process.execPath, [child, dir, String(DELAY_MS), kind, verb, arg], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(proc);
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; err: string }>((resolve) =>
    proc.once('exit', (code) => resolve({ code, err })),
  );
  return { proc, exited };
}

/** The run of `version` in the store's journals, with its entries. */
async function journalOf(dir: string, version: string) {
  const runs = join(dir, 'store', 'runs');
  for (const f of (await fs.readdir(runs).catch(() => [] as string[])).sort()) {
    const lines = (await fs.readFile(join(runs, f), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map(
        (l) =>
          JSON.parse(l) as {
            type: string;
            key?: string;
            input?: { type?: string };
            header?: { runId: string; version: string };
          },
      );
    if (lines[0]?.header?.version === version) return { runId: lines[0].header.runId, lines };
  }
  return undefined;
}

/** v1 serves (released in this process), load runs, then a child releases v2 and is killed during the delay. */
async function killedDuringDelay(kind: Kind) {
  const env = await blueGreenEnv({
    strategy: { scaleDownDelayMs: DELAY_MS, abortScaleDownDelayMs: 0 },
    ...(kind === 'nginx' ? viaNginx() : {}),
  });
  cleanups.push(async () => expect(await env.cleanup(), 'processes left running').toEqual([]));
  expect(
    await env.make({ strategy: blueGreen({ scaleDownDelayMs: 0 }) }).release({ version: 'v1' }),
  ).toMatchObject({
    status: 'succeeded',
  });
  const load = loadGenerator(await env.target.endpoint());
  cleanups.push(() => load.stop());
  await load.answeredBy('v1', 20);
  const bluePids = poolPids(env.stateDir, 'blue');

  const { proc, exited } = runChild(env.dir, kind, 'release', 'v2');
  let runId = '';
  await until(
    async () => {
      if (proc.exitCode !== null) throw new Error(`child ended before the delay: ${(await exited).err}`);
      const j = await journalOf(env.dir, 'v2');
      runId = j?.runId ?? '';
      return j?.lines.some((l) => l.type === 'step-started' && l.input?.type === 'pause') ?? false;
    },
    30_000,
    'the child reaching the scale-down delay',
  );
  proc.kill('SIGKILL');
  await exited;
  // Killed: green serves everything, blue still runs warm with no traffic.
  const state = await env.target.describe();
  expect(state.pools.map((p) => [p.name, p.version, p.weight, p.ready]).sort()).toEqual([
    ['blue', 'v1', 0, 2],
    ['green', 'v2', 100, 2],
  ]);
  expect((await env.engine.status()).interrupted.map((r) => r.runId)).toEqual([runId]);
  return { env, load, runId, bluePids };
}

describe.each(['local', 'nginx'] as const)(
  'a blue-green release killed during the scale-down delay (%s target)',
  (kind) => {
    it('resumes from its journal: the delay runs again, blue is retired, green alone serves v2', async () => {
      const { env, load, runId } = await killedDuringDelay(kind);
      const result = await env.engine.resume(runId);
      await load.answeredBy('v2', 20);
      const answers = await load.stop();

      // `from` is not asserted: core replays it from the journal as undefined (see engine-bugs.test.ts).
      expect(result).toMatchObject({ runId, status: 'succeeded', serving: 'v2' });
      expect(env.actions('deploy', runId)).toEqual(['pause', 'retire blue']);
      const state = await env.target.describe();
      expect(state.pools.map((p) => [p.name, p.version, p.weight])).toEqual([['green', 'v2', 100]]);
      expect((await env.engine.history()).map((h) => [h.version, h.status])).toEqual([
        ['v1', 'succeeded'],
        ['v2', 'succeeded'],
      ]);
      expect(answers.filter((a) => !a.ok)).toEqual([]);
    });

    it('rolls back instantly to the warm blue by emergency rollback: no provision, the same blue processes', async () => {
      const { env, load, runId, bluePids } = await killedDuringDelay(kind);
      const result = await env.engine.rollback({
        to: 'v1',
        reason: 'release host died mid-release',
        confirm: 'CONFIRM',
      });
      await load.answeredBy('v1', 20);
      const answers = await load.stop();

      expect(result).toMatchObject({ kind: 'rollback', status: 'succeeded', from: 'v2', serving: 'v1' });
      expect(env.actions('undo', result.runId)).toEqual(['route', 'promote blue', 'retire green']);
      expect(poolPids(env.stateDir, 'blue')).toEqual(bluePids);
      const state = await env.target.describe();
      expect(state.pools.map((p) => [p.name, p.version, p.weight])).toEqual([['blue', 'v1', 100]]);
      const runs = await fileStore({ dir: join(env.dir, 'store') }).runs('production');
      expect(runs.find((r) => r.runId === runId)?.status).toBe('superseded');
      expect(answers.filter((a) => !a.ok)).toEqual([]);
    });
  },
);
