import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { localBlobStore } from '../src/index.js';
import { tempDirs } from './helpers.js';

const tmp = tempDirs();

async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

async function myStart(): Promise<string> {
  const stat = await readFile(`/proc/${process.pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

describe('the repository lock', () => {
  it('has one holder when many racers take over a dead owner’s lock at once', async () => {
    const root = await tmp('lock-race');
    const store = localBlobStore(root);
    const dead = JSON.stringify({ pid: await deadPid(), host: hostname(), start: '1', since: 'then' });
    for (let round = 0; round < 25; round++) {
      await writeFile(join(root, 'LOCK'), dead);
      const results = await Promise.allSettled(Array.from({ length: 12 }, () => store.lock()));
      const holders = results.filter((r) => r.status === 'fulfilled');
      expect(holders.length, `round ${round}`).toBe(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'CG_BACKUP_FAILED' });
      }
      await (holders[0] as PromiseFulfilledResult<() => Promise<void>>).value();
    }
  });

  it('takes over a lock whose PID was recycled by another process, but not a live holder’s', async () => {
    const root = await tmp('lock-recycled');
    const store = localBlobStore(root);
    // This process is alive, but did not start when the lock says: the PID was reused.
    await writeFile(join(root, 'LOCK'), JSON.stringify({ pid: process.pid, host: hostname(), start: '1' }));
    const release = await store.lock();
    await release();
    const live = JSON.stringify({ pid: process.pid, host: hostname(), start: await myStart() });
    await writeFile(join(root, 'LOCK'), live);
    await expect(store.lock()).rejects.toMatchObject({ code: 'CG_BACKUP_FAILED' });
    expect(await readFile(join(root, 'LOCK'), 'utf8')).toBe(live);
  });

  it('releases only its own lock: a lock taken over meanwhile stays with its new holder', async () => {
    const root = await tmp('lock-release');
    const store = localBlobStore(root);
    const release = await store.lock();
    const other = JSON.stringify({ pid: process.ppid, host: hostname(), start: 'someone else' });
    await writeFile(join(root, 'LOCK'), other);
    await release();
    expect(await readFile(join(root, 'LOCK'), 'utf8')).toBe(other);
  });
});
