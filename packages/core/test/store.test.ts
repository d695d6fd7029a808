import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileStore } from '../src/index.js';

const dirs: string[] = [];
const pids: number[] = [];
afterEach(async () => {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  await Promise.all(dirs.splice(0).map((d) => fs.rm(d, { recursive: true, force: true })));
});
const tempDir = async () => {
  const d = await fs.mkdtemp(join(tmpdir(), 'cg-store-'));
  dirs.push(d);
  return d;
};
const owner = (runId: string, pid = process.pid) => ({
  runId,
  pid,
  host: hostname(),
  since: new Date().toISOString(),
});

describe('file store', () => {
  it('appends numbered journal entries durably and reads them back in order', async () => {
    const store = fileStore({ dir: await tempDir() });
    await store.append('r1', { type: 'note', message: 'a' });
    await store.append('r1', { type: 'note', message: 'b' });
    // A second store instance (another process) continues the numbering.
    const again = fileStore({ dir: dirs[0]! });
    await again.append('r1', { type: 'note', message: 'c' });
    const entries = await again.read('r1');
    expect(entries.map((e) => [e.seq, e.type === 'note' && e.message])).toEqual([
      [0, 'a'],
      [1, 'b'],
      [2, 'c'],
    ]);
  });

  it('treats a torn last line (a crash mid-write) as never written', async () => {
    const dir = await tempDir();
    const store = fileStore({ dir });
    await store.append('r1', { type: 'note', message: 'whole' });
    await fs.appendFile(join(dir, 'runs', 'r1.jsonl'), '{"seq":1,"type":"no');
    expect(await store.read('r1')).toHaveLength(1);
  });

  it('refuses a corrupt line in the middle of a journal with CG_STORE_FAILED', async () => {
    const dir = await tempDir();
    await fs.mkdir(join(dir, 'runs'), { recursive: true });
    await fs.writeFile(
      join(dir, 'runs', 'r1.jsonl'),
      '{"seq":0,"type":"note","message":"a"}\nGARBAGE\n{"seq":2}\n',
    );
    await expect(fileStore({ dir }).read('r1')).rejects.toMatchObject({ code: 'CG_STORE_FAILED' });
  });

  it('says CG_RUN_NOT_FOUND for an unknown run and CG_CONFIG_INVALID for a path-like run id', async () => {
    const store = fileStore({ dir: await tempDir() });
    await expect(store.read('nope')).rejects.toMatchObject({ code: 'CG_RUN_NOT_FOUND' });
    await expect(store.read('../../etc/passwd')).rejects.toMatchObject({ code: 'CG_CONFIG_INVALID' });
    expect(() => fileStore({ dir: '' })).toThrowError(expect.objectContaining({ code: 'CG_CONFIG_INVALID' }));
  });

  it('gives an environment lock to exactly one of two racing processes', async () => {
    const dir = await tempDir();
    const script = `
      const { fileStore } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
      const store = fileStore({ dir: ${JSON.stringify(dir)} });
      try {
        await store.lock('production', { runId: 'run-' + process.pid, pid: process.pid, host: require('os').hostname(), since: new Date().toISOString() });
        console.log('GOT'); setTimeout(() => {}, 3000);
      } catch (e) { console.log(e.code); }
    `.replace("require('os')", "(await import('node:os'))");
    const run = () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        pids.push(child.pid!);
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          if (out.includes('\n')) resolve(out.trim());
        });
        child.on('error', reject);
      });
    const results = (await Promise.all([run(), run()])).sort();
    expect(results).toEqual(['CG_ENVIRONMENT_LOCKED', 'GOT']);
  });

  it('takes over a lock whose owner process died, and refuses one whose owner lives', async () => {
    const dir = await tempDir();
    const store = fileStore({ dir });
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    pids.push(child.pid!);
    const held = await store.lock('staging', owner('old', child.pid));
    await expect(store.lock('staging', owner('new'))).rejects.toMatchObject({
      code: 'CG_ENVIRONMENT_LOCKED',
    });
    expect(await store.lockOwner('staging')).toMatchObject({ runId: 'old', pid: child.pid });
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    expect(await store.lockOwner('staging')).toBeUndefined();
    const taken = await store.lock('staging', owner('new'));
    expect(taken.owner.runId).toBe('new');
    await held.release(); // the dead owner's handle must not remove the new owner's lock
    expect(await store.lockOwner('staging')).toMatchObject({ runId: 'new' });
    await taken.release();
    expect(await store.lockOwner('staging')).toBeUndefined();
  });

  it('considers a lock from another host dead only after it stops being refreshed', async () => {
    const dir = await tempDir();
    await fs.mkdir(join(dir, 'envs', 'prod'), { recursive: true });
    const foreign = { runId: 'far', pid: 1, host: 'other-host', since: new Date().toISOString(), token: 't' };
    await fs.writeFile(
      join(dir, 'envs', 'prod', 'lock.json'),
      JSON.stringify({ ...foreign, refreshedAt: new Date().toISOString() }),
    );
    const store = fileStore({ dir, staleAfterMs: 60_000 });
    await expect(store.lock('prod', owner('mine'))).rejects.toMatchObject({ code: 'CG_ENVIRONMENT_LOCKED' });
    await fs.writeFile(
      join(dir, 'envs', 'prod', 'lock.json'),
      JSON.stringify({ ...foreign, refreshedAt: new Date(Date.now() - 120_000).toISOString() }),
    );
    const lock = await store.lock('prod', owner('mine'));
    expect(lock.owner.runId).toBe('mine');
    await lock.release();
  });

  it('lists runs with their status and keeps each environment history apart', async () => {
    const store = fileStore({ dir: await tempDir() });
    const header = (runId: string, environment: string, startedAt: string) => ({
      runId,
      kind: 'release' as const,
      environment,
      version: 'v1',
      startedAt,
      strategy: 'rolling',
      target: 'local',
    });
    await store.append('a', { type: 'run', header: header('a', 'prod', '2026-01-01T00:00:00Z') });
    await store.append('a', { type: 'finished', status: 'succeeded' });
    await store.append('b', { type: 'run', header: header('b', 'prod', '2026-01-02T00:00:00Z') });
    await store.append('c', { type: 'run', header: header('c', 'staging', '2026-01-03T00:00:00Z') });
    const runs = await store.runs('prod');
    expect(runs.map((r) => [r.runId, r.status])).toEqual([
      ['b', undefined],
      ['a', 'succeeded'],
    ]);
    const entry = {
      runId: 'a',
      kind: 'release' as const,
      version: 'v1',
      status: 'succeeded' as const,
      startedAt: '',
      finishedAt: '',
      verdicts: {},
    };
    await store.recordHistory('prod', entry);
    expect(await store.history('prod')).toEqual([entry]);
    expect(await store.history('staging')).toEqual([]);
  });
});
