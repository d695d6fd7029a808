import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type BackupInfo, ReleaseError } from '@codegraph/release-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type RocksdbBackup, rocksdbBackup } from '../src/index.js';
import {
  checkConsistency,
  fillDatabase,
  flipByte,
  holdLock,
  ldbPut,
  requireTools,
  scan,
  sstFiles,
  tempDirs,
} from './helpers.js';

const tmp = tempDirs();

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ReleaseError) return err.code;
    throw err;
  }
  throw new Error('expected the call to fail');
}

async function blobPath(repo: string, sha256: string): Promise<string> {
  return join(repo, 'blobs', 'sha256', sha256.slice(0, 2), sha256);
}

async function manifestOf(repo: string, id: string) {
  return JSON.parse(await readFile(join(repo, 'backups', id, 'manifest.json'), 'utf8')) as {
    files: Array<{ path: string; size: number; sha256: string }>;
    metadata: { writtenBytes: number; sizeBytes: number; host: string; source: string };
  };
}

describe('daily backup and full recovery of a stopped database', () => {
  let root: string;
  let db: string;
  let repo: string;
  let vector: string;
  let backup: RocksdbBackup;
  let clock = Date.parse('2026-11-01T02:00:00Z');
  const first: { info?: BackupInfo; scan?: string; ssts?: string[] } = {};
  const second: { info?: BackupInfo; scan?: string } = {};

  beforeAll(async () => {
    await requireTools('ldb', 'db_bench');
    root = await tmp('restore');
    db = join(root, 'data', 'rocksdb');
    vector = join(root, 'data', 'vector');
    repo = join(root, 'backups');
    await mkdir(vector, { recursive: true });
    await writeFile(join(vector, 'index.faiss'), 'vectors v1');
    await fillDatabase(db, { num: 20_000, seed: 1 });
    await ldbPut(db, { 'repo:codegraph': 'indexed v1' });
    backup = rocksdbBackup({
      repository: repo,
      db,
      extras: { vector },
      now: () => new Date(clock),
    });
  });

  it('takes a full backup with a manifest, SHA256SUMS and the metadata record', async () => {
    first.scan = await scan(db);
    first.ssts = await sstFiles(db);
    expect(first.ssts.length).toBeGreaterThan(3);
    first.info = await backup.create({ reason: 'scheduled', version: 'v1.2.2', labels: { run: 'daily' } });
    expect(first.info).toMatchObject({ reason: 'scheduled', version: 'v1.2.2', labels: { run: 'daily' } });

    const manifest = await manifestOf(repo, first.info.id);
    const paths = manifest.files.map((f) => f.path);
    expect(paths).toContain('vector/index.faiss');
    expect(paths).toContain('rocksdb/CURRENT');
    expect(paths.filter((p) => p.endsWith('.sst'))).toEqual(first.ssts.map((n) => `rocksdb/${n}`));
    expect(paths).not.toContain('rocksdb/LOCK');
    expect(paths).not.toContain('rocksdb/LOG');
    expect(manifest.metadata).toMatchObject({ source: 'stopped-database', host: expect.any(String) });
    expect(manifest.metadata.writtenBytes).toBe(manifest.metadata.sizeBytes);
    const sums = await readFile(join(repo, 'backups', first.info.id, 'SHA256SUMS'), 'utf8');
    expect(sums).toContain(`${manifest.files[0]?.sha256}  ${manifest.files[0]?.path}\n`);
    expect((await backup.verify(first.info.id)).ok).toBe(true);
  });

  it('stores only the new SST files in the next backup (incremental)', async () => {
    await fillDatabase(db, { num: 20_000, writes: 2_000, seed: 2 });
    await ldbPut(db, { 'repo:codegraph': 'indexed v2' });
    await writeFile(join(vector, 'index.faiss'), 'vectors v2');
    second.scan = await scan(db);
    expect(second.scan).not.toBe(first.scan);
    clock += 24 * 3600_000;
    second.info = await backup.create({ reason: 'pre-release', version: 'v1.2.3' });

    const before = await manifestOf(repo, first.info!.id);
    const after = await manifestOf(repo, second.info.id);
    const known = new Set(before.files.map((f) => f.sha256));
    const newBytes = after.files.filter((f) => !known.has(f.sha256)).reduce((n, f) => n + f.size, 0);
    expect(after.metadata.writtenBytes).toBe(newBytes);
    expect(after.metadata.writtenBytes).toBeLessThan(after.metadata.sizeBytes / 2);
    const kept = after.files.filter(
      (f) => f.path.endsWith('.sst') && before.files.some((b) => b.path === f.path),
    );
    expect(kept.length).toBeGreaterThan(3);
    for (const f of kept) expect(known.has(f.sha256), f.path).toBe(true);
    // An unchanged SST file is stored once across backups.
    const blobs = (await readdir(join(repo, 'blobs', 'sha256'), { recursive: true })).filter(
      (n) => n.length > 60,
    );
    expect(blobs.length).toBe(new Set([...before.files, ...after.files].map((f) => f.sha256)).size);
  });

  it('lists backups newest first, with size and verification state', async () => {
    const list = await backup.list();
    expect(list.map((b) => b.id)).toEqual([second.info!.id, first.info!.id]);
    expect(list[1]).toMatchObject({ verified: true, files: expect.any(Number) });
    expect(list[0]?.verified).toBeUndefined();
    expect(list[0]?.sizeBytes).toBeGreaterThan(1_000_000);
  });

  it('restores the explicitly chosen backup and moves the current data aside, never deleting it', async () => {
    const result = await backup.restore({ id: first.info!.id });
    expect(result.id).toBe(first.info!.id);
    expect(await scan(db)).toBe(first.scan);
    expect(await checkConsistency(db)).toContain('OK');
    expect(await readFile(join(vector, 'index.faiss'), 'utf8')).toBe('vectors v1');
    // What was there before the recovery is intact under data.pre-recovery.<time>.
    expect(result.movedAside).toMatch(/rocksdb\.pre-recovery\.20261102_020000$/);
    expect(await scan(result.movedAside!)).toBe(second.scan);
    const vectorAside = result.components.find((c) => c.name === 'vector')?.movedAside;
    expect(await readFile(join(vectorAside!, 'index.faiss'), 'utf8')).toBe('vectors v2');
  });

  it('restores to a point in time: the newest backup taken at or before it', async () => {
    const at = new Date(Date.parse(second.info!.createdAt) + 3600_000);
    expect((await backup.restore({ at })).id).toBe(second.info!.id);
    expect(await scan(db)).toBe(second.scan);
    const between = new Date(Date.parse(second.info!.createdAt) - 1);
    expect((await backup.restore({ at: between.toISOString() })).id).toBe(first.info!.id);
    expect(await scan(db)).toBe(first.scan);
    expect(await codeOf(backup.restore({ at: '2026-10-01T00:00:00Z' }))).toBe('CG_BACKUP_NOT_FOUND');
  });

  it('names the file whose byte was flipped, and refuses to restore that backup', async () => {
    const manifest = await manifestOf(repo, second.info!.id);
    const victim = manifest.files.find((f) => f.path.endsWith('.sst') && f.size > 10_000)!;
    await flipByte(await blobPath(repo, victim.sha256), Math.floor(victim.size / 2));

    expect((await backup.verify(second.info!.id, { level: 'presence' })).ok).toBe(true);
    const check = await backup.verify(second.info!.id, { level: 'checksum' });
    expect(check.ok).toBe(false);
    expect(check.problems).toEqual([expect.objectContaining({ path: victim.path, problem: 'checksum' })]);
    expect((await backup.list()).find((b) => b.id === second.info!.id)?.verified).toBe(false);

    const beforeRestore = await scan(db);
    const asideBefore = (await readdir(join(root, 'data'))).sort();
    expect(await codeOf(backup.restore({ id: second.info!.id }))).toBe('CG_BACKUP_CORRUPT');
    // Never a silent fallback: the database and its neighbours are exactly as they were.
    expect(await scan(db)).toBe(beforeRestore);
    expect((await readdir(join(root, 'data'))).sort()).toEqual(asideBefore);
  });

  it('refuses to restore while the service holds the LOCK', async () => {
    const lock = await holdLock(db);
    try {
      const err = await backup.restore({ id: first.info!.id }).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'CG_BACKUP_FAILED',
        message: expect.stringContaining(String(lock.pid)),
      });
      expect(await codeOf(backup.create({ reason: 'manual' }))).toBe('CG_BACKUP_FAILED');
    } finally {
      await lock.release();
    }
    expect((await backup.list()).length).toBe(2);
  });

  it('rejects bad requests with typed errors before touching anything', async () => {
    expect(await codeOf(backup.restore({}))).toBe('CG_CONFIG_INVALID');
    expect(await codeOf(backup.restore({ id: first.info!.id, at: new Date() }))).toBe('CG_CONFIG_INVALID');
    expect(await codeOf(backup.restore({ at: 'not a time' }))).toBe('CG_CONFIG_INVALID');
    expect(await codeOf(backup.restore({ id: '20261101T020000000Z-000000000000' }))).toBe(
      'CG_BACKUP_NOT_FOUND',
    );
    expect(await codeOf(backup.verify('../../etc'))).toBe('CG_BACKUP_NOT_FOUND');
    // @ts-expect-error: an unknown reason
    expect(await codeOf(backup.create({ reason: 'whenever' }))).toBe('CG_CONFIG_INVALID');
    expect(await codeOf(backup.verify(first.info!.id, { level: 'deep' as 'scan' }))).toBe(
      'CG_CONFIG_INVALID',
    );
    const linked = join(root, 'linked-extra');
    await mkdir(linked, { recursive: true });
    await symlink('/etc/passwd', join(linked, 'passwd'));
    const withLink = rocksdbBackup({ repository: repo, db, extras: { linked } });
    expect(await codeOf(withLink.create({ reason: 'manual' }))).toBe('CG_BACKUP_FAILED');
    expect(
      await codeOf(backup.exportBundle(first.info!.id, join(root, 'no', 'such', 'dir', 'kit.tgz'))),
    ).toBe('CG_BACKUP_FAILED');
    expect(() => rocksdbBackup({ repository: repo, db: '' })).toThrow(/db/);
    expect(() => rocksdbBackup({ repository: repo, db, extras: { rocksdb: vector } })).toThrow(/extra name/);
    expect(() => rocksdbBackup({ repository: repo, db, concurrency: 0 })).toThrow(/concurrency/);
    expect((await backup.list()).length).toBe(2);
  });
});
