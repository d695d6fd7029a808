import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { rocksdbBackup } from '../src/index.js';
import { checkConsistency, fillDatabase, flipByte, requireTools, sstFiles, tempDirs } from './helpers.js';

const tmp = tempDirs();

async function filesOf(repository: string, id: string) {
  const m = JSON.parse(await readFile(join(repository, 'backups', id, 'manifest.json'), 'utf8')) as {
    files: Array<{ path: string; sha256: string; size: number }>;
  };
  return m.files;
}

describe('verification levels', () => {
  let root: string;

  beforeAll(async () => {
    await requireTools('ldb', 'db_bench');
    root = await tmp('verify');
  });

  it('passes every level on a healthy backup, scan included', async () => {
    const db = join(root, 'healthy');
    await fillDatabase(db, { num: 8_000, seed: 9 });
    const backup = rocksdbBackup({ repository: join(root, 'repo-healthy'), db });
    const { id } = await backup.create({ reason: 'manual' });
    for (const level of ['presence', 'checksum', 'scan'] as const) {
      expect(await backup.verify(id, { level }), level).toMatchObject({ ok: true, level, problems: [] });
    }
  });

  it('catches with a scan the damage the database already had when it was backed up', async () => {
    const db = join(root, 'damaged');
    await fillDatabase(db, { num: 8_000, seed: 10 });
    const sst = (await sstFiles(db))[1]!;
    await flipByte(join(db, sst), 100_000);
    // ldb checkconsistency alone misses a flipped byte inside a data block...
    expect(await checkConsistency(db)).toContain('OK');
    const backup = rocksdbBackup({ repository: join(root, 'repo-damaged'), db });
    const { id } = await backup.create({ reason: 'manual' });
    // ...and so does a checksum of the stored copy, which is faithful to the damaged source.
    expect((await backup.verify(id, { level: 'checksum' })).ok).toBe(true);
    const scan = await backup.verify(id, { level: 'scan' });
    expect(scan.ok).toBe(false);
    expect(scan.problems).toEqual([
      expect.objectContaining({
        path: `rocksdb/${sst}`,
        problem: 'scan',
        detail: expect.stringMatching(/checksum mismatch/),
      }),
    ]);
    expect(scan.problems[0]?.detail).not.toContain('/tmp/');
    expect((await backup.list())[0]?.verified).toBe(false);
  });

  it('reports a missing blob at presence level, by file', async () => {
    const db = join(root, 'healthy');
    const repository = join(root, 'repo-missing');
    const backup = rocksdbBackup({ repository, db });
    const { id } = await backup.create({ reason: 'manual' });
    const victim = (await filesOf(repository, id)).find((f) => f.path.endsWith('.sst'))!;
    await rm(join(repository, 'blobs', 'sha256', victim.sha256.slice(0, 2), victim.sha256));
    const result = await backup.verify(id, { level: 'presence' });
    expect(result.problems).toEqual([expect.objectContaining({ path: victim.path, problem: 'missing' })]);
    await expect(backup.restore({ id })).rejects.toMatchObject({
      code: 'CG_BACKUP_CORRUPT',
      message: expect.stringContaining(victim.path),
    });
  });

  it('says how to install ldb when a scan needs it and it is missing', async () => {
    const db = join(root, 'healthy');
    const backup = rocksdbBackup({ repository: join(root, 'repo-healthy'), db, ldb: 'ldb-not-installed' });
    const [latest] = await backup.list();
    await expect(backup.verify(latest!.id, { level: 'scan' })).rejects.toMatchObject({
      code: 'CG_CONFIG_INVALID',
      message: expect.stringContaining('apt-get install rocksdb-tools'),
    });
  });
});
