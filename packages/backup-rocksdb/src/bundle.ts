import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { BackupCorruptError, ConfigInvalidError } from '@codegraph/release-core';
import { Header, Parser, Pax, type ReadEntry } from 'tar';
import type { BlobStore } from './blob-store.js';
import {
  BACKUP_ID,
  type BackupManifest,
  formatSha256Sums,
  isSafeRelativePath,
  type ManifestFile,
  parseManifest,
  plainMode,
} from './manifest.js';
import { checkAbort, fsyncDir, nonce } from './utils/fs.js';

const MANIFEST = 'manifest.json';
const SUMS = 'SHA256SUMS';

function tarHeader(path: string, size: number, mode: number, mtime: Date): Buffer[] {
  const data = { path, size, mode, mtime, type: 'File' as const, uid: 0, gid: 0, uname: '', gname: '' };
  const header = new Header(data);
  const block = Buffer.alloc(512);
  const needPax = header.encode(block, 0);
  return needPax ? [new Pax(data).encode(), block] : [block];
}

const padding = (size: number): Buffer => Buffer.alloc((512 - (size % 512)) % 512);

/**
 * Writes one backup as a tar bundle (an offline kit): `<id>/manifest.json`, `<id>/SHA256SUMS` and the
 * files at their backup paths, so `tar -xzf kit.tar.gz && cd <id> && sha256sum -c SHA256SUMS` checks it.
 * Every blob is hashed while it is written; a damaged blob fails the export and no bundle is left behind.
 */
export async function writeBundle(
  store: BlobStore,
  manifest: BackupManifest,
  file: string,
  options: { gzipLevel: number | false; chunkSize: number; signal?: AbortSignal | undefined },
): Promise<{ path: string; bytes: number }> {
  const target = resolve(file);
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${nonce()}`);
  const mtime = new Date(manifest.createdAt);
  async function* entries(): AsyncGenerator<Buffer> {
    const small = (name: string, text: string): Buffer[] => {
      const body = Buffer.from(text);
      return [...tarHeader(`${manifest.id}/${name}`, body.length, 0o644, mtime), body, padding(body.length)];
    };
    yield* small(MANIFEST, `${JSON.stringify(manifest, null, 2)}\n`);
    yield* small(SUMS, formatSha256Sums(manifest.files));
    for (const f of manifest.files) {
      yield* tarHeader(`${manifest.id}/${f.path}`, f.size, plainMode(f.mode), mtime);
      const hash = createHash('sha256');
      let size = 0;
      const damaged = (cause?: unknown) =>
        new BackupCorruptError(
          `${f.path} of backup ${manifest.id} is damaged in the repository; not exported`,
          {
            plugin: 'backup-rocksdb',
            ...(cause !== undefined ? { cause } : {}),
            details: { path: f.path },
          },
        );
      try {
        for await (const chunk of store.readBlob(f.sha256, options)) {
          checkAbort(options.signal, 'exporting a backup');
          hash.update(chunk);
          size += chunk.byteLength;
          yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        }
      } catch (err) {
        throw err instanceof BackupCorruptError ? damaged(err) : err;
      }
      if (size !== f.size || hash.digest('hex') !== f.sha256) throw damaged();
      yield padding(size);
    }
    yield Buffer.alloc(1024);
  }
  const out = createWriteStream(tmp, { flags: 'wx' });
  try {
    const source = Readable.from(entries());
    if (options.gzipLevel === false) await pipeline(source, out);
    else await pipeline(source, createGzip({ level: options.gzipLevel }), out);
    const handle = await open(tmp, 'r+');
    await handle.sync();
    const { size } = await handle.stat();
    await handle.close();
    await rename(tmp, target);
    await fsyncDir(dirname(target));
    return { path: target, bytes: size };
  } catch (err) {
    out.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
}

function refuse(file: string, what: string, path?: string): BackupCorruptError {
  return new BackupCorruptError(`bundle ${file} refused: ${what}`, {
    plugin: 'backup-rocksdb',
    phase: 'import',
    details: { file, ...(path !== undefined ? { path } : {}) },
  });
}

/** Parses a (gzipped or plain) tar, handing entries one at a time to `onEntry`; the next waits for it. */
function readTar(file: string, onEntry: (entry: ReadEntry) => Promise<void>): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const input = createReadStream(file);
    let chain = Promise.resolve();
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      input.destroy();
      reject(err);
    };
    const parser = new Parser({
      strict: true,
      noResume: true,
      // Extended headers are buffered by the parser: keep them small.
      maxMetaEntrySize: 64 << 10,
      onReadEntry: (entry) => {
        chain = chain.then(() => (failed ? void entry.resume() : onEntry(entry))).catch(fail);
      },
    });
    parser.on('error', (err: Error) => fail(refuse(file, `not a readable tar bundle (${err.message})`)));
    parser.on('end', () => chain.then(() => !failed && resolvePromise(), fail));
    input.on('error', fail);
    input.pipe(parser);
  });
}

/**
 * Bounds of a bundle import, checked before anything is written.
 *
 * @example
 * ```ts
 * rocksdbBackup({ repository, db, importLimits: { totalBytes: 200 * 2 ** 30 } })
 * ```
 */
export interface ImportLimits {
  /** Largest file a bundle may hold. @default 17179869184 (16 GiB) */
  fileBytes?: number;
  /** Largest sum of a bundle's files. @default 68719476736 (64 GiB) */
  totalBytes?: number;
  /** Largest manifest (and SHA256SUMS) read into memory. @default 16777216 (16 MiB) */
  manifestBytes?: number;
}

export const DEFAULT_IMPORT_LIMITS: Required<ImportLimits> = {
  fileBytes: 16 * 2 ** 30,
  totalBytes: 64 * 2 ** 30,
  manifestBytes: 16 << 20,
};

/** Reads a small entry whole, refusing it past `limit` bytes (declared or actual) without reading on. */
async function readSmall(entry: ReadEntry, limit: number, file: string): Promise<Buffer> {
  if (entry.size > limit) throw refuse(file, `${entry.path} is larger than ${limit} bytes`, entry.path);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of entry) {
    size += (c as Buffer).length;
    if (size > limit) throw refuse(file, `${entry.path} is larger than ${limit} bytes`, entry.path);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Reads a bundle made by {@link writeBundle} into the store. A first pass checks everything before anything
 * is written: the manifest completely (every field, no duplicate or traversing paths), one backup's
 * directory, regular files only (links of any kind are refused), exactly the manifest's files with their
 * declared sizes, and the size bounds. The second pass stores each file, comparing its SHA-256; when the
 * import is refused there, the blobs it added are removed again. File modes keep plain permission bits only.
 */
export async function readBundle(
  store: BlobStore,
  file: string,
  options: {
    chunkSize: number;
    signal?: AbortSignal | undefined;
    exists: (id: string) => Promise<boolean>;
    limits: Required<ImportLimits>;
  },
): Promise<{ manifest: BackupManifest; added: string[] }> {
  const path = resolve(file);
  const { limits } = options;
  let manifest: BackupManifest | undefined;
  let byPath = new Map<string, ManifestFile>();
  let sums: string | undefined;
  const seen = new Set<string>();

  await readTar(path, async (entry) => {
    checkAbort(options.signal, 'importing a backup');
    const name = entry.path;
    if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'Directory') {
      throw refuse(
        path,
        `${name} is a ${entry.type}; bundles hold regular files only (links are refused)`,
        name,
      );
    }
    if (!manifest) {
      const m = /^([^/]+)\/manifest\.json$/.exec(name);
      if (!m || !BACKUP_ID.test(m[1] ?? ''))
        throw refuse(path, `the first entry must be <id>/manifest.json, not ${name}`);
      const data = await readSmall(entry, limits.manifestBytes, path);
      try {
        manifest = parseManifest(data, `${path} ${name}`);
      } catch (err) {
        throw refuse(path, err instanceof Error ? err.message : String(err));
      }
      if (manifest.id !== m[1])
        throw refuse(path, `the manifest's id ${manifest.id} differs from its folder ${m[1]}`);
      byPath = new Map(manifest.files.map((f) => [f.path, f]));
      const big = manifest.files.find((f) => f.size > limits.fileBytes);
      if (big)
        throw refuse(
          path,
          `${big.path} (${big.size} bytes) is over the ${limits.fileBytes}-byte file limit`,
          big.path,
        );
      if (manifest.metadata.sizeBytes > limits.totalBytes) {
        throw refuse(
          path,
          `its ${manifest.metadata.sizeBytes} bytes are over the ${limits.totalBytes}-byte import limit`,
        );
      }
      return;
    }
    const prefix = `${manifest.id}/`;
    const rel = name.startsWith(prefix) ? name.slice(prefix.length).replace(/\/$/, '') : undefined;
    if (rel === undefined || (rel !== '' && !isSafeRelativePath(rel))) {
      throw refuse(path, `${name} is outside the backup's folder ${prefix}`, name);
    }
    if (entry.type === 'Directory') return void entry.resume();
    if (rel === SUMS) {
      if (sums !== undefined) throw refuse(path, `${name} appears twice`, name);
      sums = (await readSmall(entry, limits.manifestBytes, path)).toString('utf8');
      return;
    }
    const f = byPath.get(rel);
    if (!f) throw refuse(path, `${name} is not in the manifest`, name);
    if (seen.has(rel)) throw refuse(path, `${name} appears twice`, name);
    if (entry.size !== f.size)
      throw refuse(path, `${name} holds ${entry.size} bytes, the manifest says ${f.size}`, name);
    seen.add(rel);
    entry.resume();
  });

  if (!manifest) throw refuse(path, 'it holds no manifest');
  const m: BackupManifest = manifest;
  const missing = m.files.find((f) => !seen.has(f.path));
  if (missing) throw refuse(path, `${missing.path} is missing`, missing.path);
  if (sums !== formatSha256Sums(m.files)) throw refuse(path, 'SHA256SUMS does not match the manifest');
  if (await options.exists(m.id)) {
    throw new ConfigInvalidError(`backup ${m.id} is already in the repository; nothing was imported`, {
      plugin: 'backup-rocksdb',
      phase: 'import',
    });
  }

  const added: string[] = [];
  try {
    await readTar(path, async (entry) => {
      checkAbort(options.signal, 'importing a backup');
      const f = byPath.get(entry.path.slice(m.id.length + 1));
      if (!f || entry.type !== 'File' || entry.size !== f.size) return void entry.resume();
      const put = await store.putStream(entry as AsyncIterable<Buffer>, options);
      if (put.written) added.push(put.sha256);
      if (put.sha256 !== f.sha256 || put.size !== f.size) {
        throw refuse(path, `${f.path} does not match its checksum in the manifest`, f.path);
      }
    });
  } catch (err) {
    // Under the repository lock, a blob this import wrote was in no backup before it: take it back out.
    for (const sha256 of added) await store.removeBlob(sha256).catch(() => undefined);
    throw err;
  }
  return { manifest: { ...m, files: m.files.map((f) => ({ ...f, mode: plainMode(f.mode) })) }, added };
}
