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

  it('considers a lease from another host dead only after it stops being refreshed', async () => {
    const dir = await tempDir();
    const lease = join(dir, 'envs', 'prod', 'lease');
    await fs.mkdir(lease, { recursive: true });
    const file = join(lease, '000000000041.json');
    const foreign = { runId: 'far', pid: 1, host: 'other-host', since: new Date().toISOString() };
    await fs.writeFile(file, JSON.stringify({ environment: 'prod', token: 41, owner: foreign }));
    const store = fileStore({ dir, staleAfterMs: 60_000 });
    await expect(store.lock('prod', owner('mine'))).rejects.toMatchObject({ code: 'CG_ENVIRONMENT_LOCKED' });
    expect(await store.lockOwner('prod')).toMatchObject({ runId: 'far', host: 'other-host' });
    const old = new Date(Date.now() - 120_000);
    await fs.utimes(file, old, old);
    expect(await store.lockOwner('prod')).toBeUndefined();
    const lock = await store.lock('prod', owner('mine'));
    expect(lock.owner.runId).toBe('mine');
    expect(lock.token).toBe(42);
    await lock.release();
  });

  it('never takes over a truncated or garbage lease of a live owner until it is stale', async () => {
    const dir = await tempDir();
    const lease = join(dir, 'envs', 'prod', 'lease');
    await fs.mkdir(lease, { recursive: true });
    const file = join(lease, '000000000007.json');
    const store = fileStore({ dir, staleAfterMs: 60_000 });
    for (const garbage of ['', '{"environment":"prod","tok', 'null', '{"token":7}', '\u0000\u0000']) {
      await fs.writeFile(file, garbage);
      await expect(store.lock('prod', owner('mine'))).rejects.toMatchObject({
        code: 'CG_ENVIRONMENT_LOCKED',
        message: expect.stringContaining('unreadable'),
      });
    }
    const old = new Date(Date.now() - 61_000);
    await fs.utimes(file, old, old);
    const lock = await store.lock('prod', owner('mine'));
    expect(lock.token).toBe(8);
    await lock.release();
  });

  it('does not let a recycled PID block the environment: the owner is the PID plus its start time', async () => {
    const dir = await tempDir();
    const store = fileStore({ dir });
    // This process's PID, but started at another time: the process that took the lease is gone.
    const held = await store.lock('prod', { ...owner('old'), processStart: '1' });
    expect(await store.lockOwner('prod')).toBeUndefined();
    const taken = await store.lock('prod', owner('new'));
    expect(taken.token).toBeGreaterThan(held.token);
    expect(taken.owner.processStart).toMatch(/^\d+$/);
    await taken.release();
  });

  it('refreshes a held lease without rewriting it, and aborts lost when another holder took it', async () => {
    const dir = await tempDir();
    const store = fileStore({ dir, staleAfterMs: 60_000, refreshEveryMs: 20 });
    const lock = await store.lock('prod', owner('mine'));
    const file = join(dir, 'envs', 'prod', 'lease', `${String(lock.token).padStart(12, '0')}.json`);
    const before = await fs.readFile(file, 'utf8');
    const old = new Date(Date.now() - 30_000);
    await fs.utimes(file, old, old);
    await new Promise((r) => setTimeout(r, 100));
    expect((await fs.stat(file)).mtimeMs).toBeGreaterThan(Date.now() - 5_000); // refreshed
    expect(await fs.readFile(file, 'utf8')).toBe(before); // never rewritten
    // Someone took token+1 (as a takeover would): the next refresh notices.
    const next = join(dir, 'envs', 'prod', 'lease', `${String(lock.token + 1).padStart(12, '0')}.json`);
    await fs.writeFile(
      next,
      JSON.stringify({ environment: 'prod', token: lock.token + 1, owner: owner('thief') }),
    );
    await new Promise((r) => setTimeout(r, 150));
    expect(lock.lost.aborted).toBe(true);
    expect(lock.lost.reason).toMatchObject({ code: 'CG_LOCK_LOST' });
    await expect(
      store.append('r', { type: 'note', message: 'late' }, { environment: 'prod', token: lock.token }),
    ).rejects.toMatchObject({ code: 'CG_LOCK_LOST' });
    await lock.release(); // a no-op: it is lost
    expect(await store.lockOwner('prod')).toMatchObject({ runId: 'thief' });
  });

  it('does not give an environment a second holder while a run of an older release holds its lock.json', async () => {
    const dir = await tempDir();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    pids.push(child.pid!);
    await fs.mkdir(join(dir, 'envs', 'prod'), { recursive: true });
    const legacy = { ...owner('old-release', child.pid), token: 't', refreshedAt: new Date().toISOString() };
    await fs.writeFile(join(dir, 'envs', 'prod', 'lock.json'), JSON.stringify(legacy));
    const store = fileStore({ dir });
    await expect(store.lock('prod', owner('new'))).rejects.toMatchObject({ code: 'CG_ENVIRONMENT_LOCKED' });
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const lock = await store.lock('prod', owner('new'));
    expect(lock.token).toBe(1);
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
