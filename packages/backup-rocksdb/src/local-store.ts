import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { ConfigInvalidError } from '@codegraph/release-core';
import {
  type BlobStore,
  type BlobWrite,
  checkBlobName,
  checkDocKey,
  checkedBlob,
  SHA256,
} from './blob-store.js';
import {
  checkAbort,
  copyAndHash,
  DEFAULT_CHUNK_SIZE,
  type Digest,
  fsyncDir,
  lstatOrUndefined,
  nonce,
  writeFileAtomic,
} from './utils/fs.js';
import { repositoryLock } from './utils/repo-lock.js';

/**
 * Options of {@link localBlobStore}.
 *
 * @example
 * ```ts
 * localBlobStore('/mnt/scratch/backups', { fsync: false }) // scratch copies only: no durability
 * ```
 */
export interface LocalBlobStoreOptions {
  /** fsync every blob and document before it becomes visible. @default true */
  fsync?: boolean;
}

/**
 * A blob store in a local directory: `blobs/sha256/ab/<sha256>` (read-only files), documents as plain files,
 * and `tmp/` for writes in progress (renamed into place when complete).
 *
 * @example
 * ```ts
 * const backup = rocksdbBackup({ repository: localBlobStore('/mnt/backups/codegraph'), db: '/opt/codegraph/data/rocksdb' })
 * ```
 */
export function localBlobStore(directory: string, options: LocalBlobStoreOptions = {}): BlobStore {
  if (typeof directory !== 'string' || directory === '' || !isAbsolute(resolve(directory))) {
    throw new ConfigInvalidError('localBlobStore needs a directory path', { plugin: 'backup-rocksdb' });
  }
  const root = resolve(directory);
  const tmpDir = join(root, 'tmp');
  const blobPath = (sha256: string): string =>
    join(root, 'blobs', 'sha256', checkBlobName(sha256).slice(0, 2), sha256);
  const docPath = (key: string): string => join(root, ...checkDocKey(key).split('/'));

  // Moves a complete temporary file to its content address. When that content is already stored, the fresh
  // copy still replaces it (same bytes, already written): a stored blob that rotted is healed, not trusted.
  const settle = async (tmp: string, digest: Digest): Promise<BlobWrite> => {
    const dst = blobPath(digest.sha256);
    const existing = await lstatOrUndefined(dst);
    const dir = join(root, 'blobs', 'sha256', digest.sha256.slice(0, 2));
    if (!existing) await mkdir(dir, { recursive: true });
    await chmod(tmp, 0o444);
    await rename(tmp, dst);
    if (options.fsync !== false) await fsyncDir(dir);
    return { ...digest, written: !existing };
  };

  return {
    location: root,
    localPath: blobPath,
    async statBlob(sha256) {
      return (await lstatOrUndefined(blobPath(sha256)))?.size;
    },
    async putFile(path, io = {}) {
      await mkdir(tmpDir, { recursive: true });
      const tmp = join(tmpDir, `blob-${nonce()}`);
      try {
        return await settle(
          tmp,
          await copyAndHash(path, tmp, {
            signal: io.signal,
            chunkSize: io.chunkSize,
            fsync: options.fsync !== false,
          }),
        );
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    },
    async putStream(source, io = {}) {
      await mkdir(tmpDir, { recursive: true });
      const tmp = join(tmpDir, `blob-${nonce()}`);
      const handle = await open(tmp, 'wx', 0o644);
      let closed = false;
      try {
        const hash = createHash('sha256');
        let size = 0;
        for await (const chunk of source) {
          checkAbort(io.signal, 'storing a blob');
          hash.update(chunk);
          size += chunk.byteLength;
          let off = 0;
          while (off < chunk.byteLength) off += (await handle.write(chunk, off)).bytesWritten;
        }
        if (options.fsync !== false) await handle.sync();
        await handle.close();
        closed = true;
        return await settle(tmp, { sha256: hash.digest('hex'), size });
      } catch (err) {
        if (!closed) await handle.close();
        await rm(tmp, { force: true });
        throw err;
      }
    },
    readBlob(sha256, io = {}) {
      const stream = createReadStream(blobPath(sha256), {
        highWaterMark: io.chunkSize ?? DEFAULT_CHUNK_SIZE,
        signal: io.signal,
      });
      const enoent = (err: unknown) => (err as NodeJS.ErrnoException)?.code === 'ENOENT';
      return checkedBlob(sha256, root, stream as AsyncIterable<Uint8Array>, enoent);
    },
    async *listBlobs() {
      const base = join(root, 'blobs', 'sha256');
      const prefixes = await readdir(base).catch(() => [] as string[]);
      for (const prefix of prefixes.sort()) {
        for (const name of (await readdir(join(base, prefix))).sort()) {
          if (!SHA256.test(name)) continue;
          const st = await lstatOrUndefined(join(base, prefix, name));
          if (st?.isFile()) yield { sha256: name, size: st.size };
        }
      }
    },
    async removeBlob(sha256) {
      await rm(blobPath(sha256), { force: true });
    },
    async readDoc(key) {
      try {
        return await readFile(docPath(key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    async writeDoc(key, data, doc = {}) {
      await writeFileAtomic(docPath(key), data, doc.private ? 0o600 : 0o644);
    },
    async listDocs(prefix) {
      const base = docPath(prefix.replace(/\/+$/, ''));
      const out: string[] = [];
      const visit = async (dir: string, rel: string): Promise<void> => {
        const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
        for (const e of entries) {
          if (e.name.startsWith('.')) continue; // temporary files of writeDoc
          const key = `${rel}/${e.name}`;
          if (e.isDirectory()) await visit(join(dir, e.name), key);
          else if (e.isFile()) out.push(key);
        }
      };
      await visit(base, prefix.replace(/\/+$/, ''));
      return out.sort();
    },
    async removeDoc(key) {
      const path = docPath(key);
      await rm(path, { force: true });
      // Drop the directory when it became empty (a backup's folder).
      const dir = join(path, '..');
      if (dir !== root) await rm(dir, { recursive: false }).catch(() => undefined);
    },
    async lock() {
      await mkdir(root, { recursive: true });
      return repositoryLock(root);
    },
    async cleanTemporary() {
      const names = await readdir(tmpDir).catch(() => [] as string[]);
      let freed = 0;
      for (const name of names) {
        const p = join(tmpDir, name);
        freed += (await stat(p).catch(() => undefined))?.size ?? 0;
        await rm(p, { recursive: true, force: true });
      }
      return freed;
    },
  };
}
