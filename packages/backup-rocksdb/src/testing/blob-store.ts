import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReleaseError } from '@codegraph/release-core';
import { afterEach, describe, expect, it } from 'vitest';
import type { BlobStore } from '../blob-store.js';

/** What {@link testBlobStore} needs for one test: a fresh, empty store and a way to damage it. */
export interface BlobStoreFixture {
  /** The store under test, empty, with a location of its own. */
  store: BlobStore;
  /** Changes the stored bytes of a blob in place, keeping its name (bit rot, a tampered object). */
  damage(sha256: string): Promise<void>;
  /** Removes whatever the fixture made (directories, buckets, servers). Runs even when a test fails. */
  cleanup?(): Promise<void>;
}

/** Options of {@link testBlobStore}. */
export interface BlobStoreSuiteOptions {
  /** Shown in the describe block. @default 'BlobStore' */
  name?: string;
  /** Makes a fresh fixture; called once per test. */
  create(): BlobStoreFixture | Promise<BlobStoreFixture>;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function readAll(store: BlobStore, sha256: string, chunkSize?: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of store.readBlob(sha256, chunkSize ? { chunkSize } : {})) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

async function errorOf(promise: Promise<unknown>): Promise<ReleaseError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ReleaseError) return err;
    throw new Error(`expected a typed ReleaseError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected the call to fail');
}

/** A stream that yields `data` in small pieces, with a pause between them (so concurrent puts overlap). */
async function* slowly(data: Buffer, piece = 64 << 10): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += piece) {
    await new Promise((r) => setTimeout(r, 1));
    yield data.subarray(i, i + piece);
  }
}

async function blobsOf(store: BlobStore): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const b of store.listBlobs()) out.set(b.sha256, b.size);
  return out;
}

/**
 * The conformance suite every {@link BlobStore} passes (the local one, S3-compatible ones, replicated ones):
 * content addressing, put/get/has/list/delete, documents, typed errors for missing blobs and bad names, a
 * damaged blob detected when it is read back, concurrent puts of one blob, and the lock.
 *
 * @example
 * ```ts
 * import { testBlobStore } from '@codegraph/backup-rocksdb/testing'
 *
 * testBlobStore({
 *   name: 'S3 blob store on Swift',
 *   async create() {
 *     const store = s3BlobStore({ bucket, prefix: `t-${Date.now()}/`, endpoint })
 *     return { store, damage: (sha256) => overwriteObject(bucket, sha256), cleanup: () => emptyPrefix(store) }
 *   },
 * })
 * ```
 */
export function testBlobStore(options: BlobStoreSuiteOptions): void {
  const fixtures: BlobStoreFixture[] = [];
  const scratch: string[] = [];
  const fresh = async (): Promise<BlobStoreFixture> => {
    const fixture = await options.create();
    fixtures.push(fixture);
    return fixture;
  };
  const fileWith = async (data: Buffer): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'cg-blobstore-suite-'));
    scratch.push(dir);
    const path = join(dir, 'input.bin');
    await writeFile(path, data);
    return path;
  };

  describe(`${options.name ?? 'BlobStore'} conformance`, () => {
    afterEach(async () => {
      for (const f of fixtures.splice(0)) await f.cleanup?.();
      for (const d of scratch.splice(0)) await rm(d, { recursive: true, force: true });
    });

    it('names a blob by the SHA-256 of its bytes, from a file and from a stream alike, and stores it once', async () => {
      const { store } = await fresh();
      const data = randomBytes(300_000);
      const first = await store.putFile(await fileWith(data));
      expect(first).toMatchObject({ sha256: sha(data), size: data.length, written: true });
      const again = await store.putStream(slowly(data));
      expect(again).toMatchObject({ sha256: sha(data), size: data.length, written: false });
      expect(await store.statBlob(sha(data))).toBe(data.length);
      expect([...(await blobsOf(store))]).toEqual([[sha(data), data.length]]);
      expect(typeof store.location).toBe('string');
    });

    it('reads back exactly the stored bytes, over many chunks, and an empty blob too', async () => {
      const { store } = await fresh();
      const data = randomBytes(3 * (1 << 20) + 17);
      const { sha256 } = await store.putStream(slowly(data, 1 << 20));
      expect((await readAll(store, sha256, 65_536)).equals(data)).toBe(true);
      const empty = await store.putStream(slowly(Buffer.alloc(0)));
      expect(empty).toMatchObject({ sha256: sha(Buffer.alloc(0)), size: 0 });
      expect((await readAll(store, empty.sha256)).length).toBe(0);
    });

    it('lists and deletes blobs; deleting a blob that is not there is not an error', async () => {
      const { store } = await fresh();
      const a = await store.putStream(slowly(randomBytes(1000)));
      const b = await store.putStream(slowly(randomBytes(2000)));
      expect(await blobsOf(store)).toEqual(
        new Map([
          [a.sha256, 1000],
          [b.sha256, 2000],
        ]),
      );
      await store.removeBlob(a.sha256);
      await store.removeBlob(a.sha256);
      expect(await store.statBlob(a.sha256)).toBeUndefined();
      expect([...(await blobsOf(store)).keys()]).toEqual([b.sha256]);
    });

    it('detects a blob whose stored bytes changed: reading it back throws CG_BACKUP_CORRUPT', async () => {
      const fixture = await fresh();
      const data = randomBytes(200_000);
      const { sha256 } = await fixture.store.putStream(slowly(data));
      await fixture.damage(sha256);
      const err = await errorOf(readAll(fixture.store, sha256));
      expect(err.code).toBe('CG_BACKUP_CORRUPT');
      expect(err.message).toContain(sha256);
    });

    it('answers a missing blob with a typed error: CG_BACKUP_CORRUPT with details.missing', async () => {
      const { store } = await fresh();
      const absent = sha(randomBytes(16));
      expect(await store.statBlob(absent)).toBeUndefined();
      const err = await errorOf(readAll(store, absent));
      expect(err.code).toBe('CG_BACKUP_CORRUPT');
      expect(err.details?.['missing']).toBe(true);
    });

    it('refuses malformed digests and document keys with CG_CONFIG_INVALID', async () => {
      const { store } = await fresh();
      for (const bad of ['../../etc/passwd', 'ABC', `${'a'.repeat(63)}/`, '']) {
        expect((await errorOf(Promise.resolve().then(() => store.statBlob(bad)))).code, bad).toBe(
          'CG_CONFIG_INVALID',
        );
        expect((await errorOf(readAll(store, bad))).code, bad).toBe('CG_CONFIG_INVALID');
      }
      for (const bad of ['../escape', 'a/../../b', '/abs', 'a//b', 'sp ace\n']) {
        expect((await errorOf(Promise.resolve().then(() => store.readDoc(bad)))).code, bad).toBe(
          'CG_CONFIG_INVALID',
        );
        expect((await errorOf(Promise.resolve().then(() => store.writeDoc(bad, 'x')))).code, bad).toBe(
          'CG_CONFIG_INVALID',
        );
      }
    });

    it('stores concurrent puts of one blob once and intact, and concurrent puts of different blobs all', async () => {
      const { store } = await fresh();
      const data = randomBytes(1 << 20);
      const puts = await Promise.all(Array.from({ length: 6 }, () => store.putStream(slowly(data))));
      for (const p of puts) expect(p).toMatchObject({ sha256: sha(data), size: data.length });
      expect(puts.some((p) => p.written)).toBe(true);
      expect((await readAll(store, sha(data))).equals(data)).toBe(true);
      const others = Array.from({ length: 6 }, () => randomBytes(50_000));
      const stored = await Promise.all(others.map((o) => store.putStream(slowly(o, 4096))));
      expect(stored.map((s) => s.sha256)).toEqual(others.map(sha));
      expect((await blobsOf(store)).size).toBe(7);
    });

    it('stores nothing from a put whose source fails half way', async () => {
      const { store } = await fresh();
      async function* broken(): AsyncGenerator<Uint8Array> {
        yield randomBytes(100_000);
        throw new Error('the source went away');
      }
      await expect(store.putStream(broken())).rejects.toThrow(/went away/);
      expect((await blobsOf(store)).size).toBe(0);
      await store.cleanTemporary();
    });

    it('keeps documents: written, read back, listed by prefix, removed; a missing one reads as undefined', async () => {
      const { store } = await fresh();
      expect(await store.readDoc('backups/a/manifest.json')).toBeUndefined();
      await store.writeDoc('backups/a/manifest.json', '{"a":1}');
      await store.writeDoc('backups/a/SHA256SUMS', Buffer.from('sums'));
      await store.writeDoc('backups/b/manifest.json', '{"b":2}');
      await store.writeDoc('keys/manifest-hmac', 'secret', { private: true });
      await store.writeDoc('backups/a/manifest.json', '{"a":2}');
      expect(Buffer.from((await store.readDoc('backups/a/manifest.json')) ?? []).toString()).toBe('{"a":2}');
      expect(await store.listDocs('backups')).toEqual([
        'backups/a/SHA256SUMS',
        'backups/a/manifest.json',
        'backups/b/manifest.json',
      ]);
      await store.removeDoc('backups/a/manifest.json');
      await store.removeDoc('backups/a/manifest.json');
      expect(await store.listDocs('backups')).toEqual(['backups/a/SHA256SUMS', 'backups/b/manifest.json']);
      expect(Buffer.from((await store.readDoc('keys/manifest-hmac')) ?? []).toString()).toBe('secret');
    });

    it('has one lock holder at a time: a second lock() fails until the first is released', async () => {
      const { store } = await fresh();
      const release = await store.lock();
      expect(await errorOf(store.lock())).toBeInstanceOf(ReleaseError);
      await release();
      const again = await store.lock();
      await again();
    });
  });
}
