import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { buildManifest, fileStore, type ReleaseManifest } from '../src/index.js';
import { directoryBackup, releaseEnv } from './helpers/release-env.js';
import { until } from './recovery-helpers.js';

// Every run keeps a manifest built from its journal: versions, backups, verdicts, durations; written as
// JSON next to the journal when the run ends.
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

async function setup(faults: Record<string, Record<string, string>> = {}) {
  const env = await releaseEnv({ faults, replicas: 1 });
  cleanups.push(() => env.cleanup());
  const data = join(env.dir, 'data');
  await mkdir(data, { recursive: true });
  await writeFile(join(data, 'graph.db'), 'nodes');
  const backup = directoryBackup(data, join(env.dir, 'backups'));
  const runsDir = join(env.dir, 'store', 'runs');
  const engine = env.make({ backup, manifestDir: runsDir, secrets: ['s3cr3t-token'] });
  return { env, engine, backup, runsDir };
}

describe('release manifest', () => {
  it('records versions, the backup, verdicts and durations of a release, next to its journal', async () => {
    const { engine, runsDir } = await setup();
    await engine.release({ version: 'v1' });
    const result = await engine.release({ version: 'v2', reason: 'weekly release' });
    const manifest = await engine.manifest(result.runId);
    expect(manifest).toMatchObject({
      runId: result.runId,
      kind: 'release',
      environment: 'staging',
      version: 'v2',
      from: 'v1',
      serving: 'v2',
      status: 'succeeded',
      strategy: 'rolling',
      backups: [{ id: 'b2', role: 'pre-release' }],
      startedAt: result.startedAt,
      finishedAt: result.finishedAt,
      durationMs: result.durationMs,
      migrations: [],
    });
    expect(manifest.verdicts.map((v) => [v.step, v.verdict])).toEqual(
      result.analyses.map((a, i) => [manifest.verdicts[i]!.step, a.verdict]),
    );
    expect(manifest.verdicts.at(-1)).toEqual({ step: 'verify', name: 'verify', verdict: 'pass' });
    for (const s of manifest.steps) {
      expect(s.status).toBe('finished');
      expect(s.durationMs).toBeGreaterThanOrEqual(0);
    }
    const onDisk = JSON.parse(await readFile(join(runsDir, `${result.runId}.manifest.json`), 'utf8'));
    expect(onDisk).toEqual(manifest);
    // The store still lists runs only from journals: manifests beside them do not confuse it.
    expect((await engine.history()).map((h) => h.version)).toEqual(['v1', 'v2']);
  });

  it('tells a rolled-back release and its rollback verdict apart, and keeps secrets out', async () => {
    const { engine, runsDir } = await setup({ v2: { FAULT_ERROR_RATE: '1' } });
    await engine.release({ version: 'v1' });
    const result = await engine.release({ version: 'v2', reason: 'ship with token s3cr3t-token' });
    expect(result.status).toBe('rolled-back');
    const manifest = await engine.manifest(result.runId);
    expect(manifest).toMatchObject({ status: 'rolled-back', from: 'v1', serving: 'v1' });
    const verdicts = Object.fromEntries(manifest.verdicts.map((v) => [v.step, v.verdict]));
    expect(verdicts['verify-restored']).toBe('pass');
    expect(Object.values(verdicts)).toContain('fail');
    const text = await readFile(join(runsDir, `${result.runId}.manifest.json`), 'utf8');
    expect(text).not.toContain('s3cr3t-token');
    // The secret was offered: the journal the manifest is built from holds it redacted.
    expect(await readFile(join(runsDir, `${result.runId}.jsonl`), 'utf8')).toContain(
      'ship with token [REDACTED]',
    );
  });

  it('describes a run that is still going (or whose process died) without a status', async () => {
    const { env } = await setup();
    // A release process killed once its deploy started: its journal has no end.
    const child = fileURLToPath(new URL('./fixtures/release-child.mjs', import.meta.url));
    const proc = spawn(process.execPath, [child, env.dir, 'release', 'v1'], { stdio: 'ignore' });
    const exited = new Promise((r) => proc.once('exit', r));
    cleanups.push(async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    });
    const runs = join(env.dir, 'store', 'runs');
    let runId = '';
    await until(
      async () => {
        for (const f of (await readdir(runs).catch(() => [] as string[])).filter((n) =>
          n.endsWith('.jsonl'),
        )) {
          const text = await readFile(join(runs, f), 'utf8');
          if (text.includes('"key":"deploy/0"')) runId = f.replace('.jsonl', '');
        }
        if (proc.exitCode !== null) throw new Error('the release ended before its deploy started');
        return runId !== '';
      },
      30_000,
      'the release to start deploying',
    );
    proc.kill('SIGKILL');
    await exited;
    const manifest: ReleaseManifest = buildManifest(
      await fileStore({ dir: join(env.dir, 'store') }).read(runId),
    );
    expect(manifest).toMatchObject({ runId, version: 'v1', status: undefined, finishedAt: undefined });
    expect(manifest.steps.at(-1)).toMatchObject({ key: 'deploy/0', status: 'running' });
    await expect(env.engine.manifest('staging-nope')).rejects.toMatchObject({ code: 'CG_RUN_NOT_FOUND' });
  });
});
