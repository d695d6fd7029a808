import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testBackupProvider } from '@codegraph/release-core/testing';
import { rocksdbBackup } from '../src/index.js';
import { fillDatabase, flipByte, ldbPut, requireTools, scan } from './helpers.js';

testBackupProvider({
  name: 'rocksdbBackup over a stopped database',
  async create() {
    await requireTools('ldb', 'db_bench');
    const root = await mkdtemp(join(tmpdir(), 'cg-backup-conformance-'));
    const db = join(root, 'rocksdb');
    const repository = join(root, 'backups');
    await fillDatabase(db, { num: 5_000, seed: 7 });
    return {
      provider: rocksdbBackup({ repository, db }),
      snapshot: () => scan(db),
      mutate: () => ldbPut(db, { changed: 'after the backup' }),
      async corrupt(id) {
        const manifest = JSON.parse(
          await readFile(join(repository, 'backups', id, 'manifest.json'), 'utf8'),
        ) as {
          files: Array<{ path: string; sha256: string; size: number }>;
        };
        const sst = manifest.files.find((f) => f.path.endsWith('.sst'))!;
        await flipByte(
          join(repository, 'blobs', 'sha256', sst.sha256.slice(0, 2), sst.sha256),
          sst.size >> 1,
        );
      },
      cleanup: () => rm(root, { recursive: true, force: true }),
    };
  },
});
