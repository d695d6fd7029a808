import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { ReleaseError } from '@codegraph/release-core';
import { Header } from 'tar';
import { beforeAll, describe, expect, it } from 'vitest';
import { type RocksdbBackup, rocksdbBackup } from '../src/index.js';
import { checkConsistency, fillDatabase, flipByte, requireTools, scan, tempDirs } from './helpers.js';

const exec = promisify(execFile);
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

/** A hand-made tar, to build the hostile bundles node-tar and GNU tar would not write. */
function tarOf(
  entries: Array<{ path: string; body?: string; type?: 'File' | 'SymbolicLink' | 'Link'; linkpath?: string }>,
) {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const header = new Header({
      path: e.path,
      mode: 0o644,
      size: e.type && e.type !== 'File' ? 0 : body.length,
      mtime: new Date(0),
      type: e.type ?? 'File',
      ...(e.linkpath ? { linkpath: e.linkpath } : {}),
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (!e.type || e.type === 'File') blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

describe('offline kit: export and import of one backup as a tar bundle', () => {
  let root: string;
  let db: string;
  let backup: RocksdbBackup;
  let id: string;
  let expected: string;

  beforeAll(async () => {
    await requireTools('ldb', 'db_bench');
    root = await tmp('bundle');
    db = join(root, 'rocksdb');
    await fillDatabase(db, { num: 8_000, seed: 5 });
    expected = await scan(db);
    backup = rocksdbBackup({ repository: join(root, 'backups'), db });
    id = (await backup.create({ reason: 'manual', version: 'v1.2.3' })).id;
  });

  it('exports a gzipped tar that sha256sum -c accepts after tar -xzf', async () => {
    const kit = join(root, 'kit.tar.gz');
    const { bytes } = await backup.exportBundle(id, kit);
    expect(bytes).toBeGreaterThan(100_000);
    const out = join(root, 'unpacked');
    await exec('mkdir', ['-p', out]);
    await exec('tar', ['-xzf', kit, '-C', out]);
    const { stdout } = await exec('sha256sum', ['-c', 'SHA256SUMS'], { cwd: join(out, id) });
    expect(stdout).toMatch(/rocksdb\/CURRENT: OK/);
    expect(stdout).not.toMatch(/FAILED/);
    expect(await checkConsistency(join(out, id, 'rocksdb'))).toContain('OK');
    expect(await codeOf(backup.exportBundle(id, kit))).toBe('CG_CONFIG_INVALID');
  });

  it('imports the bundle into another repository and restores from it', async () => {
    const other = rocksdbBackup({ repository: join(root, 'site-b'), db: join(root, 'site-b-db') });
    const info = await other.importBundle(join(root, 'kit.tar.gz'));
    expect(info).toMatchObject({ id, version: 'v1.2.3' });
    expect((await other.verify(id)).ok).toBe(true);
    await other.restore({ id });
    expect(await scan(join(root, 'site-b-db'))).toBe(expected);
    expect(await codeOf(other.importBundle(join(root, 'kit.tar.gz')))).toBe('CG_CONFIG_INVALID');
  });

  it('writes a plain tar when gzip is off', async () => {
    const plain = rocksdbBackup({ repository: join(root, 'backups'), db, gzipLevel: false });
    await plain.exportBundle(id, join(root, 'kit.tar'));
    const { stdout } = await exec('tar', ['-tf', join(root, 'kit.tar')]);
    expect(stdout.split('\n').slice(0, 2)).toEqual([`${id}/manifest.json`, `${id}/SHA256SUMS`]);
  });

  it('refuses path traversal, absolute paths and links, and registers nothing', async () => {
    const manifest = await readFile(join(root, 'backups', 'backups', id, 'manifest.json'), 'utf8');
    const hostile = {
      traversal: [
        { path: `${id}/manifest.json`, body: manifest },
        { path: `${id}/../../escape.txt`, body: 'x' },
      ],
      absolute: [
        { path: `${id}/manifest.json`, body: manifest },
        { path: '/tmp/escape.txt', body: 'x' },
      ],
      symlink: [
        { path: `${id}/manifest.json`, body: manifest },
        { path: `${id}/rocksdb/CURRENT`, type: 'SymbolicLink' as const, linkpath: '/etc/passwd' },
      ],
      hardlink: [
        { path: `${id}/manifest.json`, body: manifest },
        { path: `${id}/rocksdb/CURRENT`, type: 'Link' as const, linkpath: '../../../etc/passwd' },
      ],
      'manifest not first': [{ path: `${id}/rocksdb/CURRENT`, body: 'MANIFEST-1\n' }],
    };
    const target = rocksdbBackup({ repository: join(root, 'site-c'), db: join(root, 'site-c-db') });
    for (const [name, entries] of Object.entries(hostile)) {
      const file = join(root, `hostile-${name.replace(/ /g, '-')}.tar.gz`);
      await writeFile(file, tarOf(entries));
      const err = await target.importBundle(file).catch((e: unknown) => e);
      expect(err, name).toMatchObject({ code: 'CG_BACKUP_CORRUPT' });
    }
    expect(await target.list()).toEqual([]);
    expect(await readdir(root)).not.toContain('escape.txt');
    const blobs = await readdir(join(root, 'site-c', 'blobs')).catch(() => []);
    expect(blobs).toEqual([]);
  });

  it('refuses a bundle whose file does not match its checksum', async () => {
    const kit = join(root, 'kit.tar');
    const bytes = await readFile(kit);
    // Damage the body of the last file in the plain tar (just before the end-of-archive blocks).
    const damaged = join(root, 'damaged.tar');
    const at = bytes.length - 1024 - 600;
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    await writeFile(damaged, bytes);
    const target = rocksdbBackup({ repository: join(root, 'site-d'), db: join(root, 'site-d-db') });
    const err = await target.importBundle(damaged).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'CG_BACKUP_CORRUPT',
      message: expect.stringMatching(/rocksdb\/\S+ does not match/),
    });
    expect(await target.list()).toEqual([]);
  });

  it('does not export a damaged backup, and leaves no partial bundle', async () => {
    const manifest = JSON.parse(
      await readFile(join(root, 'backups', 'backups', id, 'manifest.json'), 'utf8'),
    ) as {
      files: Array<{ path: string; sha256: string; size: number }>;
    };
    const sst = manifest.files.find((f) => f.path.endsWith('.sst'))!;
    await flipByte(join(root, 'backups', 'blobs', 'sha256', sst.sha256.slice(0, 2), sst.sha256), 100);
    const err = await backup.exportBundle(id, join(root, 'bad-kit.tar.gz')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CG_BACKUP_CORRUPT', message: expect.stringContaining(sst.path) });
    expect((await readdir(root)).filter((n) => n.includes('bad-kit'))).toEqual([]);
  });
});
