import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileStore, type JournalEntry } from '../src/index.js';
import { releaseEnv } from './helpers/release-env.js';

// A real full disk: a 1 MiB tmpfs (root is needed to mount it; CI runs the tests as root).
let mnt = '';
beforeAll(async () => {
  mnt = await fs.mkdtemp(join(tmpdir(), 'cg-full-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', mnt], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(
      `store-full-disk.test.ts mounts a small tmpfs and needs root (or CAP_SYS_ADMIN): ${String((err as { stderr?: Buffer }).stderr ?? err)}`,
    );
  }
});
afterAll(async () => {
  if (!mnt) return;
  execFileSync('umount', [mnt]);
  await fs.rm(mnt, { recursive: true, force: true });
});

const free = () => {
  const out = execFileSync('df', ['-B1', '--output=avail', mnt], { encoding: 'utf8' });
  return Number(out.trim().split('\n').pop());
};

const header = (runId: string) => ({
  runId,
  kind: 'release' as const,
  environment: 'production',
  version: 'v2',
  startedAt: new Date().toISOString(),
  strategy: 'canary',
  target: 'local',
});

describe('the journal on a disk that fills up mid-release', () => {
  it('a full disk never loses an acknowledged journal entry, and the journal goes on once there is room', async () => {
    const store = fileStore({ dir: join(mnt, 'store') });
    const runId = 'production-20260101T000000-abcdef';
    const lock = await store.lock('production', {
      runId,
      pid: process.pid,
      host: 'h',
      since: new Date().toISOString(),
    });
    const fence = { environment: 'production', token: lock.token };
    const acknowledged: JournalEntry[] = [];
    acknowledged.push(await store.append(runId, { type: 'run', header: header(runId) }, fence));
    // Another writer (a backup, logs) takes most of what is left while the release is journaling.
    const filler = join(mnt, 'filler');
    let failures = 0;
    const codes = new Set<string>();
    for (let i = 0; failures < 5 && i < 2_000; i++) {
      if (i === 20) await fs.writeFile(filler, Buffer.alloc(Math.max(0, free() - 24 * 1024)));
      // Steps with sizeable inputs, so an entry straddles the last free page: real short writes.
      const input = { step: i, pad: 'x'.repeat(1_500 + ((i * 613) % 2_500)) };
      try {
        acknowledged.push(
          await store.append(runId, { type: 'step-started', key: `deploy/${i}`, input }, fence),
        );
      } catch (err) {
        failures++;
        codes.add((err as { code?: string }).code ?? String(err));
      }
    }
    expect(failures).toBe(5);
    expect([...codes]).toEqual(['CG_STORE_FAILED']);
    expect(acknowledged.length).toBeGreaterThan(20);

    // Full: everything acknowledged is there, in order, and nothing that failed is.
    const whileFull = await store.read(runId);
    expect(whileFull).toEqual(acknowledged);
    expect((await store.runs('production')).map((r) => r.runId)).toEqual([runId]);

    // Room again: the next appends follow the acknowledged ones, none is glued to a torn line.
    await fs.rm(filler);
    acknowledged.push(await store.append(runId, { type: 'note', message: 'disk freed' }, fence));
    acknowledged.push(
      await store.append(runId, { type: 'finished', status: 'succeeded', serving: 'v2' }, fence),
    );
    const after = await fileStore({ dir: join(mnt, 'store') }).read(runId);
    expect(after).toEqual(acknowledged);
    expect(after.map((e) => e.seq)).toEqual(acknowledged.map((_, i) => i));
    await lock.release();
  });

  it('a release whose disk fills up mid-way stops with CG_STORE_FAILED and resumes to a verified end once there is room', {
    timeout: 120_000,
  }, async () => {
    const dir = join(mnt, 'engine-store');
    const env = await releaseEnv({ engine: { store: fileStore({ dir }) } });
    try {
      expect((await env.engine.release({ version: 'v1' })).status).toBe('succeeded');
      const filler = join(mnt, 'filler-2');
      let runId = '';
      env.engine.on('run.started', (e) => {
        runId = e.runId;
      });
      env.engine.on('action.started', (e) => {
        if (e.kind !== 'release' || e.action.type !== 'route' || existsSync(filler)) return;
        try {
          writeFileSync(filler, Buffer.alloc(free())); // the disk is full from here on
        } catch {
          // as full as it gets
        }
      });
      const outcome = await env.engine.release({ version: 'v2' }).then(
        (r) => r.error?.code ?? r.status,
        (err: { code?: string }) => err.code,
      );
      expect(outcome).toBe('CG_STORE_FAILED');
      const whileFull = await fileStore({ dir }).read(runId);
      expect(whileFull.map((e) => e.seq)).toEqual(whileFull.map((_, i) => i));
      expect(whileFull.at(-1)?.type).not.toBe('finished');

      await rm(filler);
      const resumed = await env.engine.resume(runId);
      expect(resumed.status).toBe('succeeded');
      expect(await env.serving()).toBe('v2');
      const after = await fileStore({ dir }).read(runId);
      expect(after.slice(0, whileFull.length)).toEqual(whileFull); // nothing acknowledged was lost
      expect(after.map((e) => e.seq)).toEqual(after.map((_, i) => i));
    } finally {
      await env.cleanup();
    }
  });
});
