import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { fileStore, type LocalTarget, localTarget } from '../src/index.js';

// A pipeline process is SIGKILLed while it waits for a soak and while production's release runs;
// a new process promoting the same version continues the same pipeline run where it stopped.
const child = fileURLToPath(new URL('./fixtures/pipeline-child.mjs', import.meta.url));
const children: ChildProcess[] = [];
let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const fn of cleanup) await fn().catch(() => undefined);
  cleanup = [];
});

function runChild(dir: string, version: string, killAt?: string, env: Record<string, string> = {}) {
  const proc = spawn(process.execPath, [child, dir, version, ...(killAt ? [killAt] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  children.push(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>(
    (resolve) => proc.once('exit', (code, signal) => resolve({ code, signal, out, err })),
  );
}

async function setup() {
  const dir = await fs.mkdtemp(join(tmpdir(), 'cg-pipeline-restart-'));
  await fs.writeFile(join(dir, 'clock'), '2026-06-01T10:00:00Z');
  // Targets on the same state directories adopt what the child processes started, to check and clean up.
  const targets: Record<string, LocalTarget> = {};
  for (const env of ['staging', 'production'])
    targets[env] = localTarget({ stateDir: join(dir, env, 'local'), command: () => ({ command: 'false' }) });
  cleanup.push(async () => {
    for (const t of Object.values(targets)) await t.destroy();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const serving = async (env: string) => {
    const res = await request(`${await targets[env]!.endpoint()}/health`);
    return ((await res.body.json()) as { version: string }).version;
  };
  const history = (env: string) => fileStore({ dir: join(dir, env, 'store') }).history(env);
  const pipelineStore = fileStore({ dir: join(dir, 'pipeline-store') });
  return { dir, targets, serving, history, pipelineStore };
}

const parse = (out: string) => JSON.parse(out.trim().split('\n').at(-1)!);

describe('pipeline: a killed process is continued by the next one', () => {
  it('killed while production waits for its soak: the restarted process waits out the rest and promotes', async () => {
    const { dir, serving, history, pipelineStore } = await setup();
    const killed = await runChild(dir, 'v1', 'waiting', { SOAK_MS: String(10 * 60_000) });
    expect(killed.signal).toBe('SIGKILL');
    const [run] = await pipelineStore.runs('pipeline.search');
    expect(run).toMatchObject({ kind: 'pipeline', version: 'v1', status: undefined });
    expect(await serving('staging')).toBe('v1');

    // Five minutes later the soak is not over: the restarted process waits, staging is not released again.
    await fs.writeFile(join(dir, 'clock'), '2026-06-01T10:05:00Z');
    const restarted = runChild(dir, 'v1', undefined, { SOAK_MS: String(10 * 60_000) });
    const waits = async () =>
      (await pipelineStore.read(run!.runId)).filter((e) => e.type === 'note' && e.message === 'waiting')
        .length;
    for (let i = 0; i < 200 && (await waits()) < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await waits()).toBe(2);
    expect(await pipelineStore.lockOwner('pipeline.search')).toMatchObject({ runId: run!.runId });
    await fs.writeFile(join(dir, 'clock'), '2026-06-01T10:10:00Z');
    const done = await restarted;
    expect(done.code, done.err).toBe(0);
    expect(parse(done.out)).toEqual({
      runId: run!.runId,
      status: 'succeeded',
      reached: 'production',
      resumed: true,
    });
    expect(await serving('production')).toBe('v1');
    expect((await history('staging')).filter((h) => h.kind === 'release')).toHaveLength(1);
    expect(await pipelineStore.lockOwner('pipeline.search')).toBeUndefined();
  });

  it("killed while production's release runs: the restarted process resumes that stage run", async () => {
    const { dir, serving, history, pipelineStore, targets } = await setup();
    const first = await runChild(dir, 'v1');
    expect(first.code, first.err).toBe(0);

    const killed = await runChild(dir, 'v2', 'production-traffic');
    expect(killed.signal).toBe('SIGKILL');
    const done = await runChild(dir, 'v2');
    expect(done.code, done.err).toBe(0);
    const result = parse(done.out);
    expect(result).toMatchObject({ status: 'succeeded', reached: 'production', resumed: true });
    expect(await serving('production')).toBe('v2');
    // One pool, all traffic: the interrupted production run was continued, not started over.
    const pools = (await targets.production!.describe()).pools;
    expect(pools.map((p) => [p.version, p.weight])).toEqual([['v2', 100]]);
    const releases = (await history('production')).filter((h) => h.kind === 'release');
    expect(releases.map((h) => [h.version, h.status])).toEqual([
      ['v1', 'succeeded'],
      ['v2', 'succeeded'],
    ]);
    const journal = await pipelineStore.read(result.runId);
    const stageRuns = journal.filter((e) => e.type === 'note' && e.message === 'stage-run');
    expect(stageRuns).toHaveLength(2);
    expect(releases[1]!.runId).toBe((stageRuns[1] as { data: { runId: string } }).data.runId);
  });
});
