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
      yield* tarHeader(`${manifest.id}/${f.path}`, f.size, f.mode || 0o644, mtime);
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of store.readBlob(f.sha256, options)) {
        checkAbort(options.signal, 'exporting a backup');
        hash.update(chunk);
        size += chunk.byteLength;
        yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      }
      if (size !== f.size || hash.digest('hex') !== f.sha256) {
        throw new BackupCorruptError(
          `${f.path} of backup ${manifest.id} is damaged in the repository; not exported`,
          {
            plugin: 'backup-rocksdb',
            details: { path: f.path },
          },
        );
      }
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
 * Reads a bundle made by {@link writeBundle} into the store. A first pass checks every entry before anything
 * is written: one backup's directory, regular files only (links of any kind are refused), no absolute or
 * `..` paths, exactly the manifest's files. The second pass stores each file, comparing its SHA-256.
 */
export async function readBundle(
  store: BlobStore,
  file: string,
  options: { chunkSize: number; signal?: AbortSignal | undefined; exists: (id: string) => Promise<boolean> },
): Promise<BackupManifest> {
  const path = resolve(file);
  let manifest: BackupManifest | undefined;
  let sums: string | undefined;
  const seen = new Set<string>();
  const readText = async (entry: ReadEntry): Promise<string> => {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };

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
      manifest = parseManifest(Buffer.from(await readText(entry)), `${path} ${name}`);
      if (manifest.id !== m[1])
        throw refuse(path, `the manifest's id ${manifest.id} differs from its folder ${m[1]}`);
      return;
    }
    const prefix = `${manifest.id}/`;
    const rel = name.startsWith(prefix) ? name.slice(prefix.length).replace(/\/$/, '') : undefined;
    if (rel === undefined || (rel !== '' && !isSafeRelativePath(rel))) {
      throw refuse(path, `${name} is outside the backup's folder ${prefix}`, name);
    }
    if (entry.type === 'Directory') return void entry.resume();
    if (rel === SUMS) {
      sums = await readText(entry);
      return;
    }
    if (!manifest.files.some((f) => f.path === rel))
      throw refuse(path, `${name} is not in the manifest`, name);
    if (seen.has(rel)) throw refuse(path, `${name} appears twice`, name);
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

  const byPath = new Map<string, ManifestFile>(m.files.map((f) => [f.path, f]));
  await readTar(path, async (entry) => {
    const f = byPath.get(entry.path.slice(m.id.length + 1));
    if (!f || entry.type !== 'File') return void entry.resume();
    const put = await store.putStream(entry as AsyncIterable<Buffer>, options);
    if (put.sha256 !== f.sha256 || put.size !== f.size) {
      throw refuse(path, `${f.path} does not match its checksum in the manifest`, f.path);
    }
  });
  return m;
}
