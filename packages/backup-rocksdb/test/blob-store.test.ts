import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testBlobStore } from '@codegraph/backup-rocksdb/testing';
import { localBlobStore, mirroredBlobStore } from '../src/index.js';
import { blobFile, flipByte } from './helpers.js';

testBlobStore({
  name: 'localBlobStore',
  async create() {
    const dir = await mkdtemp(join(tmpdir(), 'cg-blobstore-local-'));
    return {
      store: localBlobStore(dir),
      damage: (sha256) => flipByte(blobFile(dir, sha256), 10),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  },
});

testBlobStore({
  name: 'mirroredBlobStore over two local stores',
  async create() {
    const dir = await mkdtemp(join(tmpdir(), 'cg-blobstore-mirror-'));
    const store = mirroredBlobStore(localBlobStore(join(dir, 'local')), localBlobStore(join(dir, 'offsite')));
    return {
      store,
      // Damaged wherever it is: the store must not hand out bytes that do not hash to the name.
      async damage(sha256) {
        for (const copy of ['local', 'offsite'])
          await flipByte(blobFile(join(dir, copy), sha256), 10).catch(() => {});
      },
      async cleanup() {
        await store.settled();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
});
