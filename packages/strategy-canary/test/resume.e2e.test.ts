import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createReleaseEngine, fileStore, localTarget, type ReleaseEvent } from '@codegraph/release-core';
import { type CanaryStep, canary } from '@codegraph/strategy-canary';
import { afterEach, describe, expect, it } from 'vitest';
import { baseLatency, sampleServer, shifts, steadyLoad } from './helpers/env.js';
import { until } from './helpers/scenarios.js';

const child = fileURLToPath(new URL('./fixtures/canary-child.mjs', import.meta.url));
const steps: CanaryStep[] = [{ setWeight: 20 }, { pause: { durationMs: 1500 } }, { setWeight: 50 }];

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('canary after the engine dies', () => {
  it('resumes from the journal at the pause and finishes the canary, with no request lost meanwhile', async () => {
    // The child runs the built packages, as a deployed release script would.
    const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    if (!existsSync(built)) throw new Error(`${built} is missing: run \`npm run build\` at the root first`);
    const dir = await mkdtemp(path.join(tmpdir(), 'cg-canary-resume-'));
    const target = localTarget({
      stateDir: path.join(dir, 'local'),
      command: ({ version, port }) => ({
        command: process.execPath,
        args: [sampleServer, '--port', String(port), '--version', version],
        env: baseLatency,
      }),
    });
    let proc: ChildProcess | undefined;
    cleanups.push(async () => {
      if (proc?.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await target.destroy().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    });
    const store = fileStore({ dir: path.join(dir, 'store') });
    const events: ReleaseEvent[] = [];
    const engine = createReleaseEngine({
      environment: 'staging',
      target,
      strategy: canary({ steps }),
      store,
      replicas: 2,
      metrics: false,
    });
    engine.on('*', (e) => events.push(e));
    expect((await engine.release({ version: 'v1' })).status).toBe('succeeded');
    const load = steadyLoad(await target.endpoint());
    try {
      // The release of v2 runs in its own process, which dies (SIGKILL) while the canary pauses at 20 %.
      const started = spawn(process.execPath, [child, dir, 'v2', JSON.stringify(steps)], { stdio: 'ignore' });
      proc = started;
      const exited = new Promise((resolve) => started.once('exit', resolve));
      let runId = '';
      await until(
        async () => {
          const open = (await store.runs('staging')).find((r) => r.status === undefined);
          if (!open) return false;
          runId = open.runId;
          const entries = await store.read(runId);
          return entries.some(
            (e) => e.type === 'step-started' && (e.input as { type?: string })?.type === 'pause',
          );
        },
        30_000,
        'the child release pausing at 20 %',
      );
      started.kill('SIGKILL');
      await exited;
      expect((await target.describe()).pools.map((p) => [p.name, p.weight]).sort()).toEqual([
        ['v1', 80],
        ['v2', 20],
      ]);
      expect((await engine.status()).interrupted.map((r) => r.runId)).toEqual([runId]);

      const before = events.length;
      const result = await engine.resume(runId);
      expect(result.status, result.reason).toBe('succeeded');
      expect(result.serving).toBe('v2');
      // The journal replays the first weight; only the steps after the pause run again.
      expect(shifts(events.slice(before)).map((s) => s.weights)).toEqual([{ v1: 50, v2: 50 }, { v2: 100 }]);
      expect((await target.describe()).pools.map((p) => [p.name, p.weight])).toEqual([['v2', 100]]);
      const after = load.samples.length;
      await until(() => load.samples.length >= after + 20, 10_000, 'load after the resume');
    } finally {
      await load.stop();
    }
    expect(load.samples.filter((s) => s.status !== 200)).toEqual([]);
    expect(load.samples.some((s) => s.pool === 'v2')).toBe(true);
  });
});
