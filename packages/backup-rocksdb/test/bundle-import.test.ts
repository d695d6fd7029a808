import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ReleaseError } from '@codegraph/release-core';
import { Header } from 'tar';
import { beforeAll, describe, expect, it } from 'vitest';
import { rocksdbBackup } from '../src/index.js';
import { blobFile, fillDatabase, requireTools, scan, storedManifest, tempDirs } from './helpers.js';

const tmp = tempDirs();

type File = { path: string; size: number; sha256: string; mode: number };
type Manifest = { id: string; files: File[]; [key: string]: unknown };

async function errorOf(promise: Promise<unknown>): Promise<ReleaseError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ReleaseError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

/** A plain tar of `<id>/manifest.json`, `<id>/SHA256SUMS` and the files, as exportBundle lays it out. */
function tarOf(id: string, manifest: unknown, files: Array<[string, Buffer]>, sums?: string): Buffer {
  const m = manifest as Manifest;
  const entries: Array<[string, Buffer]> = [
    [`${id}/manifest.json`, Buffer.from(JSON.stringify(manifest))],
    [`${id}/SHA256SUMS`, Buffer.from(sums ?? m.files.map((f) => `${f.sha256}  ${f.path}\n`).join(''))],
    ...files.map(([p, b]): [string, Buffer] => [`${id}/${p}`, b]),
  ];
  const blocks: Buffer[] = [];
  for (const [path, body] of entries) {
    const block = Buffer.alloc(512);
    new Header({ path, mode: 0o644, size: body.length, mtime: new Date(0), type: 'File' }).encode(block, 0);
    blocks.push(block, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

async function blobCount(repository: string): Promise<number> {
  const names = await readdir(join(repository, 'blobs'), { recursive: true }).catch(() => [] as string[]);
  return names.filter((n) => /[0-9a-f]{64}$/.test(n)).length;
}

describe('bundle import validates and bounds everything before it commits', () => {
  let root: string;
  let id: string;
  let manifest: Manifest;
  let files: Array<[string, Buffer]>;
  let n = 0;
  const otherId = () => `20261101T0200000${String(n++).padStart(2, '0')}Z-aaaaaaaaaaaa`;
  const renamed = (m: Manifest, newId: string) => ({ ...m, id: newId });

  beforeAll(async () => {
    await requireTools('ldb', 'db_bench');
    root = await tmp('import');
    const db = join(root, 'rocksdb');
    await fillDatabase(db, { num: 4_000, seed: 71 });
    const repo = join(root, 'source');
    id = (await rocksdbBackup({ repository: repo, db }).create({ reason: 'manual' })).id;
    manifest = (await storedManifest(repo, id)).manifest as Manifest;
    files = await Promise.all(
      manifest.files.map(
        async (f): Promise<[string, Buffer]> => [f.path, await readFile(blobFile(repo, f.sha256))],
      ),
    );
  });

  async function importInto(name: string, bundle: Buffer, limits?: Record<string, number>) {
    const file = join(root, `${name}-${n++}.tar`);
    await writeFile(file, bundle);
    const repository = join(root, name);
    const target = rocksdbBackup({
      repository,
      db: join(root, `${name}-db`),
      ...(limits ? { importLimits: limits } : {}),
    });
    return { target, repository, result: target.importBundle(file) };
  }

  it('removes the blobs it had already stored when it refuses a bundle half way', async () => {
    const last = files.length - 1;
    const damaged = files.map(([p, b], i): [string, Buffer] => {
      if (i !== last) return [p, b];
      const copy = Buffer.from(b);
      copy[copy.length >> 1] = (copy[copy.length >> 1] ?? 0) ^ 0xff;
      return [p, copy];
    });
    const { repository, result } = await importInto('half', tarOf(id, manifest, damaged));
    expect(await errorOf(result)).toMatchObject({ code: 'CG_BACKUP_CORRUPT' });
    expect(await blobCount(repository)).toBe(0);
  });

  it('refuses a manifest with a missing or mistyped field, a path listed twice or a traversal, and the other backups still list and restore', async () => {
    const { target, repository, result } = await importInto('site', tarOf(id, manifest, files));
    await result;
    const variants: Record<string, (m: Manifest) => Manifest> = {
      'no metadata': ({ metadata: _m, ...m }) => m as Manifest,
      'no labels': ({ labels: _l, ...m }) => m as Manifest,
      'a size that is a string': (m) => ({
        ...m,
        files: m.files.map((f, i) => (i ? f : { ...f, size: String(f.size) as unknown as number })),
      }),
      'an unknown reason': (m) => ({ ...m, reason: 'because' }),
      'a path listed twice': (m) => ({ ...m, files: [...m.files, m.files[0]!] }),
      'a traversal': (m) => ({
        ...m,
        files: m.files.map((f, i) => (i ? f : { ...f, path: 'rocksdb/../../etc/cron.d/x' })),
      }),
      'a label that is not text': (m) => ({ ...m, labels: { run: 42 as unknown as string } }),
    };
    for (const [what, change] of Object.entries(variants)) {
      const fresh = otherId();
      const bad = change(renamed(manifest, fresh));
      const file = join(root, `variant-${n++}.tar`);
      await writeFile(file, tarOf(fresh, bad, files));
      expect((await errorOf(target.importBundle(file))).code, what).toBe('CG_BACKUP_CORRUPT');
    }
    const list = await target.list();
    expect(list.map((b) => [b.id, b.damaged])).toEqual([[id, undefined]]);
    expect(await blobCount(repository)).toBe(new Set(manifest.files.map((f) => f.sha256)).size);
    await target.restore({ id });
    expect(await scan(join(root, 'site-db'))).toBe(await scan(join(root, 'rocksdb')));
  });

  it('bounds sizes before writing anything: per file, in total, the manifest, and each entry against the manifest', async () => {
    const biggest = Math.max(...manifest.files.map((f) => f.size));
    const cases: Array<[string, Buffer, Record<string, number> | undefined, RegExp]> = [
      ['file', tarOf(id, manifest, files), { fileBytes: biggest - 1 }, /file limit/],
      ['total', tarOf(id, manifest, files), { totalBytes: 10_000 }, /import limit/],
      ['manifest', tarOf(id, manifest, files), { manifestBytes: 1000 }, /larger than 1000 bytes/],
      [
        'entry',
        tarOf(
          id,
          manifest,
          files.map(([p, b], i): [string, Buffer] => [p, i ? b : Buffer.concat([b, Buffer.alloc(1 << 20)])]),
        ),
        undefined,
        /the manifest says/,
      ],
    ];
    for (const [name, bundle, limits, message] of cases) {
      const { repository, result } = await importInto(`bound-${name}`, bundle, limits);
      const err = await errorOf(result);
      expect(err.code, name).toBe('CG_BACKUP_CORRUPT');
      expect(err.message, name).toMatch(message);
      expect(await blobCount(repository), name).toBe(0);
    }
    expect(() =>
      rocksdbBackup({ repository: join(root, 'x'), db: join(root, 'y'), importLimits: { fileBytes: -1 } }),
    ).toThrow(/importLimits/);
  });

  it('refuses a manifest over its bound before reading it into memory', async () => {
    const huge = Buffer.alloc(20 << 20, 0x20);
    const block = Buffer.alloc(512);
    new Header({
      path: `${id}/manifest.json`,
      mode: 0o644,
      size: huge.length,
      mtime: new Date(0),
      type: 'File',
    }).encode(block, 0);
    const bundle = Buffer.concat([block, huge, Buffer.alloc(1024)]);
    const { result } = await importInto('huge', bundle);
    const err = await errorOf(result);
    expect(err.code).toBe('CG_BACKUP_CORRUPT');
    expect(err.message).toMatch(/larger than 16777216 bytes/);
  });

  it('restores only plain permission bits: no setuid, setgid or sticky bit from a manifest', async () => {
    const fresh = otherId();
    const modes = renamed(manifest, fresh);
    const withBits = {
      ...modes,
      files: modes.files.map((f) => ({ ...f, mode: f.path.endsWith('CURRENT') ? 0o6755 : 0o1777 })),
    };
    const { target, result } = await importInto('modes', tarOf(fresh, withBits, files));
    await result;
    await target.restore({ id: fresh });
    const restored = join(root, 'modes-db');
    expect((await stat(join(restored, 'CURRENT'))).mode & 0o7777).toBe(0o755);
    for (const name of await readdir(restored)) {
      expect((await stat(join(restored, name))).mode & 0o7000, name).toBe(0);
    }
  });
});
