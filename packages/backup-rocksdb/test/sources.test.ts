import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReleaseError, silentLogger } from '@codegraph/release-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  adminApiCheckpoint,
  consistentDirectory,
  ldbCheckpoint,
  lockHolder,
  rocksdbBackup,
  stoppedDatabase,
} from '../src/index.js';
import { fillDatabase, holdLock, ldbPut, requireTools, scan, tempDirs, waitFor } from './helpers.js';

const tmp = tempDirs();
const API_KEY = 'test-admin-key-9f2c';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ReleaseError) return err.code;
    throw err;
  }
  throw new Error('expected the call to fail');
}

/** A stand-in for the CodeGraph admin API: pause/resume indexing, and a checkpoint made with ldb. */
async function adminServer(db: string, mode: { checkpoint: 'ldb' | 'fail' | 'no-manifest' }) {
  const calls: Array<{ path: string; auth: string | undefined; body: string }> = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += String(c);
    });
    req.on('end', () => {
      calls.push({ path: req.url ?? '', auth: req.headers.authorization, body });
      const reply = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (req.headers.authorization !== `Bearer ${API_KEY}`) return reply(401, { error: 'unauthorized' });
      if (req.url !== '/api/v1/admin/checkpoint') return reply(200, { ok: true });
      const { path } = JSON.parse(body) as { path: string };
      if (mode.checkpoint === 'fail') return reply(500, { error: 'disk full' });
      if (mode.checkpoint === 'no-manifest') {
        void mkdir(path, { recursive: true })
          .then(() => writeFile(join(path, 'CURRENT'), 'MANIFEST-000999\n'))
          .then(() => reply(201, { path }));
        return;
      }
      execFile('ldb', [`--db=${db}`, 'checkpoint', `--checkpoint_dir=${path}`], (err, _o, stderr) =>
        err ? reply(500, { error: stderr }) : reply(201, { path }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, calls, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('consistent snapshot sources', () => {
  let root: string;
  let db: string;
  let expected: string;

  beforeAll(async () => {
    await requireTools('ldb', 'db_bench');
    root = await tmp('sources');
    db = join(root, 'data', 'rocksdb');
    await fillDatabase(db, { num: 8_000, seed: 3 });
    await ldbPut(db, { 'repo:codegraph': 'indexed' });
    expected = await scan(db);
  });

  async function restoredScan(repository: string, id: string): Promise<string> {
    const target = join(await tmp('restored'), 'rocksdb');
    await rocksdbBackup({ repository, db: target }).restore({ id });
    return scan(target);
  }

  it('checkpoints through the admin API with the Bearer key, pausing indexing until the extras are stored', async () => {
    const api = await adminServer(db, { checkpoint: 'ldb' });
    try {
      const repository = join(root, 'repo-admin');
      const vector = join(root, 'data', 'vector');
      await mkdir(vector, { recursive: true });
      await writeFile(join(vector, 'index.faiss'), 'vectors');
      const seen: string[] = [];
      const backup = rocksdbBackup({
        repository,
        db,
        source: adminApiCheckpoint({ url: api.url, apiKey: API_KEY }),
        extras: { vector },
        onProgress: (e) => seen.push(`${e.path}@${api.calls.length}`),
      });
      const info = await backup.create({ reason: 'pre-release', version: 'v2' });
      expect(api.calls.map((c) => c.path)).toEqual([
        '/api/v1/admin/pause-indexing',
        '/api/v1/admin/checkpoint',
        '/api/v1/admin/resume-indexing',
      ]);
      expect(api.calls.every((c) => c.auth === `Bearer ${API_KEY}`)).toBe(true);
      // The vector index was stored while indexing was paused (two calls made: pause and checkpoint).
      expect(seen).toContain('vector/index.faiss@2');
      expect(await restoredScan(repository, info.id)).toBe(expected);
      // The temporary checkpoint is gone; the database directory is untouched.
      expect(await readdir(join(root, 'data', '.codegraph-checkpoints'))).toEqual([]);
    } finally {
      await api.close();
    }
  });

  it('resumes indexing and records no backup when the checkpoint fails', async () => {
    for (const mode of ['fail', 'no-manifest'] as const) {
      const api = await adminServer(db, { checkpoint: mode });
      try {
        const repository = join(root, `repo-${mode}`);
        const backup = rocksdbBackup({
          repository,
          db,
          source: adminApiCheckpoint({ url: api.url, apiKey: API_KEY }),
        });
        const err = await backup.create({ reason: 'manual' }).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'CG_BACKUP_FAILED' });
        expect(String((err as Error).message)).not.toContain(API_KEY);
        expect(api.calls.at(-1)?.path).toBe('/api/v1/admin/resume-indexing');
        expect(await backup.list()).toEqual([]);
      } finally {
        await api.close();
      }
    }
  });

  it('rejects an admin source without a key or URL before any call', () => {
    expect(() => adminApiCheckpoint({ url: 'http://127.0.0.1:1', apiKey: '' })).toThrow(/apiKey/);
    expect(() => adminApiCheckpoint({ url: 'not a url', apiKey: API_KEY })).toThrow(/not a URL/);
  });

  it('backs up the sample service through its checkpoint endpoint', async () => {
    const server = fileURLToPath(new URL('../../../examples/sample-service/server.mjs', import.meta.url));
    expect(existsSync(server), `${server} is part of the repository`).toBe(true);
    const child: ChildProcess = spawn(
      process.execPath,
      [server, '--port', '0', '--api-key', API_KEY, '--data-dir', db, '--version', 'v9'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      let out = '';
      child.stdout?.on('data', (d) => {
        out += String(d);
      });
      const port = await waitFor('the sample service to listen', () => {
        const line = out.split('\n').find((l) => l.includes('"listening"'));
        return line ? (JSON.parse(line) as { port: number }).port : undefined;
      });
      const url = `http://127.0.0.1:${port}`;
      const repository = join(root, 'repo-sample');
      const backup = rocksdbBackup({
        repository,
        db,
        source: adminApiCheckpoint({
          url,
          apiKey: API_KEY,
          endpoints: { pause: '/api/v1/admin/indexing/pause', resume: '/api/v1/admin/indexing/resume' },
        }),
      });
      const info = await backup.create({ reason: 'pre-release', version: 'v9' });
      const health = (await (await fetch(`${url}/health`)).json()) as { indexing: string };
      expect(health.indexing).toBe('running');
      expect(await restoredScan(repository, info.id)).toBe(expected);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('makes an ldb checkpoint as a secondary instance while another process holds the database open', async () => {
    // An ldb REPL holds the database open (and its LOCK) for as long as its stdin stays open.
    const holder = spawn('ldb', [`--db=${db}`, 'query'], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      const held = await waitFor('ldb to take the LOCK', () => lockHolder(db));
      expect(held.pid).toBe(holder.pid);
      const repository = join(root, 'repo-ldb');
      const backup = rocksdbBackup({ repository, db, source: ldbCheckpoint() });
      // The stopped-database source refuses while the LOCK is held...
      expect(await codeOf(rocksdbBackup({ repository, db }).create({ reason: 'manual' }))).toBe(
        'CG_BACKUP_FAILED',
      );
      // ...the ldb checkpoint goes through a secondary instance.
      const info = await backup.create({ reason: 'manual' });
      expect(await restoredScan(repository, info.id)).toBe(expected);
    } finally {
      holder.stdin.end();
      holder.kill('SIGTERM');
    }
    await waitFor('ldb to release the LOCK', async () => ((await lockHolder(db)) ? undefined : true));
  });

  it('says how to install ldb when the binary is missing', async () => {
    const backup = rocksdbBackup({
      repository: join(root, 'repo-noldb'),
      db,
      source: ldbCheckpoint({ ldb: 'ldb-not-here' }),
    });
    const err = await backup.create({ reason: 'manual' }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'CG_CONFIG_INVALID',
      message: expect.stringContaining('rocksdb-tools'),
    });
  });

  it('fails a stopped-database backup when the service starts during the copy', async () => {
    const snapshot = await stoppedDatabase().open(db, { logger: silentLogger });
    const lock = await holdLock(db);
    try {
      await expect(snapshot.confirm?.()).rejects.toMatchObject({ code: 'CG_BACKUP_FAILED' });
    } finally {
      await lock.release();
      await snapshot.dispose();
    }
  });

  it('takes a directory the caller declares consistent, once its CURRENT names an existing MANIFEST', async () => {
    const bad = join(root, 'not-a-checkpoint');
    await mkdir(bad, { recursive: true });
    await writeFile(join(bad, 'CURRENT'), 'MANIFEST-000042\n');
    const repository = join(root, 'repo-dir');
    const badBackup = rocksdbBackup({ repository, db, source: consistentDirectory(bad) });
    expect(await codeOf(badBackup.create({ reason: 'manual' }))).toBe('CG_BACKUP_FAILED');
    const info = await rocksdbBackup({ repository, db, source: consistentDirectory(db) }).create({
      reason: 'manual',
    });
    expect(await restoredScan(repository, info.id)).toBe(expected);
  });
});
