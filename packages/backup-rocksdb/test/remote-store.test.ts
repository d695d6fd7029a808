import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackupFailedError } from '@codegraph/release-core';
import { testBackupProvider } from '@codegraph/release-core/testing';
import { type BlobStore, rocksdbBackup } from '../src/index.js';
import { fillDatabase, ldbPut, requireTools, scan } from './helpers.js';

/**
 * A store with no local paths, written against the BlobStore interface alone: it stands for a remote
 * (S3-compatible) store, and makes the repository use its streaming paths for verify, restore and scan.
 */
function memoryBlobStore(): BlobStore & { blobs: Map<string, Buffer> } {
  const blobs = new Map<string, Buffer>();
  const docs = new Map<string, Buffer>();
  let locked = false;
  const putStream: BlobStore['putStream'] = async (source) => {
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    for await (const chunk of source) {
      hash.update(chunk);
      chunks.push(Buffer.from(chunk));
    }
    const sha256 = hash.digest('hex');
    const written = !blobs.has(sha256);
    blobs.set(sha256, Buffer.concat(chunks));
    return { sha256, size: blobs.get(sha256)!.length, written };
  };
  return {
    blobs,
    location: 'memory://backups',
    statBlob: async (sha256) => blobs.get(sha256)?.length,
    putFile: (path, io) => putStream(createReadStream(path), io),
    putStream,
    async *readBlob(sha256) {
      const blob = blobs.get(sha256);
      if (!blob) throw Object.assign(new Error(`no blob ${sha256}`), { code: 'ENOENT' });
      for (let i = 0; i < blob.length; i += 65_536) yield blob.subarray(i, i + 65_536);
    },
    async *listBlobs() {
      for (const [sha256, blob] of blobs) yield { sha256, size: blob.length };
    },
    removeBlob: async (sha256) => void blobs.delete(sha256),
    readDoc: async (key) => docs.get(key),
    writeDoc: async (key, data) => void docs.set(key, Buffer.from(data)),
    listDocs: async (prefix) => [...docs.keys()].filter((k) => k.startsWith(`${prefix}/`)).sort(),
    removeDoc: async (key) => void docs.delete(key),
    async lock() {
      if (locked) throw new BackupFailedError('memory store is locked');
      locked = true;
      return async () => {
        locked = false;
      };
    },
    cleanTemporary: async () => 0,
  };
}

testBackupProvider({
  name: 'rocksdbBackup over a store that only speaks the BlobStore interface',
  async create() {
    await requireTools('ldb', 'db_bench');
    const root = await mkdtemp(join(tmpdir(), 'cg-backup-remote-'));
    const db = join(root, 'rocksdb');
    await fillDatabase(db, { num: 5_000, seed: 13 });
    const store = memoryBlobStore();
    const provider = rocksdbBackup({ repository: store, db });
    return {
      provider: {
        name: provider.name,
        create: provider.create,
        list: provider.list,
        restore: provider.restore,
        // Scan level too: the database is materialised from streamed blobs, not hard links.
        verify: (id, options) => provider.verify(id, { level: 'scan', ...options }),
      },
      snapshot: () => scan(db),
      mutate: () => ldbPut(db, { changed: 'after the backup' }),
      async corrupt() {
        const [sha256, blob] = [...store.blobs].sort((a, b) => b[1].length - a[1].length)[0]!;
        blob[blob.length >> 1] = (blob[blob.length >> 1] ?? 0) ^ 0x01;
        store.blobs.set(sha256, blob);
      },
      cleanup: () => rm(root, { recursive: true, force: true }),
    };
  },
});
