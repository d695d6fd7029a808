import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createReleaseEngine, fileStore, localTarget, rolling } from '../src/index.js';
import { serviceChecks } from './helpers/release-env.js';
import { sampleServerPath } from './helpers/sample.js';

// A release process is SIGKILLed at several points of a rolling update; another engine then resumes
// (or rolls back) from the journal. The target must end consistent: one pool, all traffic, verified.
const child = fileURLToPath(new URL('./fixtures/release-child.mjs', import.meta.url));
const children: ChildProcess[] = [];
let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const fn of cleanup) await fn().catch(() => undefined);
  cleanup = [];
});

function runChild(dir: string, verb: 'release' | 'resume', arg: string, env: Record<string, string> = {}) {
  const proc = spawn(process.execPath, [child, dir, verb, arg], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  children.push(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    out: string;
    err: string;
  }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal, out, err })));
  return { proc, exited };
}

async function journalOf(
  dir: string,
): Promise<{ runId: string; lines: Array<{ type: string; key?: string }> } | undefined> {
  const runs = join(dir, 'store', 'runs');
  const files = (await fs.readdir(runs).catch(() => [] as string[])).sort();
  for (const f of files) {
    const lines = (await fs.readFile(join(runs, f), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    if (lines[0]?.header?.version === 'v2') return { runId: lines[0].header.runId, lines };
  }
  return undefined;
}

async function setup() {
  const dir = await fs.mkdtemp(join(tmpdir(), 'cg-resume-'));
  const target = localTarget({
    stateDir: join(dir, 'local'),
    command: ({ version, port }) => ({
      command: process.execPath,
      args: [sampleServerPath, '--port', String(port), '--version', version],
    }),
  });
  cleanup.push(async () => {
    await target.destroy();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const engine = createReleaseEngine({
    environment: 'staging',
    target,
    strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
    store: fileStore({ dir: join(dir, 'store') }),
    replicas: 2,
    metrics: false,
    verifiers: [serviceChecks],
  });
  const first = runChild(dir, 'release', 'v1');
  expect((await first.exited).code).toBe(0);
  return { dir, target, engine };
}

/** Releases v2 in a child that SIGKILLs itself once the journal records `key` as started. */
async function killAt(dir: string, key: string): Promise<string> {
  const { exited } = runChild(dir, 'release', 'v2', { CG_KILL_AT: key });
  const { signal, err } = await exited;
  expect(signal, `the child should die at ${key}: ${err}`).toBe('SIGKILL');
  const j = await journalOf(dir);
  expect(j?.lines.at(-1)).toMatchObject({ type: 'step-started', key });
  return j!.runId;
}

async function expectConsistent(target: ReturnType<typeof localTarget>, version: string) {
  const state = await target.describe();
  expect(state.pools.map((p) => [p.version, p.weight, p.replicas, p.ready])).toEqual([[version, 100, 2, 2]]);
  const res = await request(`${await target.endpoint()}/health`);
  expect(((await res.body.json()) as { version: string }).version).toBe(version);
}

describe('a release killed mid-way', () => {
  it.each(['preflight', 'deploy/0', 'deploy/2', 'deploy/4', 'deploy/6', 'deploy/9', 'verify', 'history'])(
    'resumes to a consistent, verified v2 after a kill at %s',
    async (key) => {
      const { dir, target, engine } = await setup();
      const runId = await killAt(dir, key);
      const status = await engine.status();
      expect(status.interrupted.map((r) => r.runId)).toEqual([runId]);
      // A new release is refused until the interrupted one is resumed or rolled back.
      await expect(engine.release({ version: 'v3' })).rejects.toMatchObject({ code: 'CG_RUN_INTERRUPTED' });
      const result = await engine.resume(runId);
      expect(result).toMatchObject({ runId, status: 'succeeded', serving: 'v2', from: 'v1' });
      await expectConsistent(target, 'v2');
      expect((await engine.history()).map((h) => h.version)).toEqual(['v1', 'v2']);
      // Resuming a finished run only reports it.
      expect((await engine.resume(runId)).status).toBe('succeeded');
      expect((await engine.history()).length).toBe(2);
    },
  );

  it('refuses to resume with another strategy than the run was started with, changing nothing', async () => {
    const { dir, target, engine } = await setup();
    const runId = await killAt(dir, 'deploy/2');
    const before = await target.describe();
    const other = createReleaseEngine({
      environment: 'staging',
      target,
      strategy: { ...rolling(), name: 'all-at-once' },
      store: fileStore({ dir: join(dir, 'store') }),
      metrics: false,
    });
    await expect(other.resume(runId)).rejects.toMatchObject({ code: 'CG_CONFIG_INVALID' });
    expect(await target.describe()).toEqual(before);
    expect((await engine.resume(runId)).status).toBe('succeeded');
  });

  it('resumes in a fresh process as well', async () => {
    const { dir, target } = await setup();
    const runId = await killAt(dir, 'deploy/5');
    const resumed = runChild(dir, 'resume', runId);
    const { code, out } = await resumed.exited;
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ runId, status: 'succeeded', serving: 'v2' });
    await expectConsistent(target, 'v2');
  });

  it('can be rolled back instead: the interrupted run is superseded and v1 serves again', async () => {
    const { dir, target, engine } = await setup();
    const runId = await killAt(dir, 'deploy/5');
    const result = await engine.rollback({ to: 'v1', reason: 'release host died', confirm: 'CONFIRM' });
    expect(result).toMatchObject({ status: 'succeeded', serving: 'v1' });
    await expectConsistent(target, 'v1');
    expect((await engine.status()).interrupted).toEqual([]);
    const runs = await fileStore({ dir: join(dir, 'store') }).runs('staging');
    expect(runs.find((r) => r.runId === runId)?.status).toBe('superseded');
  });
});
