import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { rocksdbBackup } from '../src/index.js';
import { fillDatabase, requireTools, scan, tempDirs } from './helpers.js';

const tmp = tempDirs();

describe('verify at level scan', () => {
  beforeAll(async () => {
    await requireTools('ldb', 'db_bench');
  });

  it('streams the ldb scan: a healthy database whose scan prints more than 16 MiB verifies ok', async () => {
    const root = await tmp('scan-stream');
    const db = join(root, 'rocksdb');
    await fillDatabase(db, { num: 16_000, seed: 81, valueSize: 1000 });
    expect((await scan(db)).length).toBeGreaterThan(16 << 20);
    const backup = rocksdbBackup({ repository: join(root, 'backups'), db });
    const { id } = await backup.create({ reason: 'manual' });
    expect(await backup.verify(id, { level: 'scan' })).toMatchObject({
      ok: true,
      level: 'scan',
      problems: [],
    });
    expect((await backup.list())[0]?.verified).toBe(true);
  });
});
