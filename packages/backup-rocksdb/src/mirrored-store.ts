import type { Logger } from '@codegraph/release-core';
import { BackupFailedError, silentLogger } from '@codegraph/release-core';
import { KEY_DOC, macKey, manifestKey, sumsKey } from './auth.js';
import type { BlobIoOptions, BlobStore } from './blob-store.js';
import { parseManifest } from './manifest.js';
import { hashBlob } from './materialize.js';

/**
 * Options of {@link mirroredBlobStore}.
 *
 * @example
 * ```ts
 * mirroredBlobStore(localBlobStore('/opt/codegraph/backups'), s3Store, { readBack: false })
 * ```
 */
export interface MirroredBlobStoreOptions {
  /** Read every copied blob back from the secondary and hash it before its backup is copied. @default true */
  readBack?: boolean;
  /** Where copy failures and fallbacks are logged. @default silentLogger */
  logger?: Logger;
}

/**
 * What the copies to the secondary did since the last {@link MirroredBlobStore.settled}.
 *
 * @example
 * ```ts
 * const { copied, failed } = await store.settled() // copied: ['20261125T…'], failed: []
 * ```
 */
export interface MirrorReport {
  /** Backups now complete on the secondary (blobs first, manifest last). */
  copied: string[];
  blobsCopied: number;
  bytesCopied: number;
  /** Backups that could not be copied (retried by the next sync), with the reason. */
  failed: Array<{ id: string; error: string }>;
  /** Blobs that were read from the secondary because the primary's copy was missing or damaged. */
  fallbacks: string[];
}

/**
 * A {@link BlobStore} kept in two places: a primary (local: fast backups and restores) and a secondary
 * (offsite: S3-compatible storage). Writes go to the primary; each committed backup is then copied to the
 * secondary in the background (blobs the secondary lacks, each read back and hashed, then its records with
 * the manifest last, so a backup appears there only when complete). Reads prefer the primary and fall back to
 * the secondary when a blob is missing or does not hash to its name; listings are the union of both, so a
 * lost primary still lists and restores. Verification reports both copies ({@link BlobStore.copies}).
 *
 * @example
 * ```ts
 * const store = mirroredBlobStore(localBlobStore('/opt/codegraph/backups'), s3BlobStore({ bucket: 'cg-backups' }))
 * const backup = rocksdbBackup({ repository: store, db: '/opt/codegraph/data/rocksdb' })
 * await backup.create({ reason: 'scheduled' })
 * const { copied, failed } = await store.settled() // wait for the offsite copy before exiting
 * ```
 */
export interface MirroredBlobStore extends BlobStore {
  readonly primary: BlobStore;
  readonly secondary: BlobStore;
  /** Copies every backup the secondary lacks or holds differently; resolves when done. */
  sync(): Promise<MirrorReport>;
  /** Waits for the background copies started so far, and reports what they (and fallbacks) did. */
  settled(): Promise<MirrorReport>;
  copies(): readonly BlobStore[];
}

const emptyReport = (): MirrorReport => ({
  copied: [],
  blobsCopied: 0,
  bytesCopied: 0,
  failed: [],
  fallbacks: [],
});
const same = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
  a !== undefined && b !== undefined && Buffer.from(a).equals(Buffer.from(b));

/**
 * Makes a {@link MirroredBlobStore}: backups written locally, copied offsite in the background, read from the
 * local copy with the offsite one as fallback.
 *
 * @example
 * ```ts
 * const store = mirroredBlobStore(localBlobStore('/opt/codegraph/backups'), localBlobStore('/mnt/nas/codegraph'))
 * const backup = rocksdbBackup({ repository: store, db: '/opt/codegraph/data/rocksdb' })
 * ```
 */
export function mirroredBlobStore(
  primary: BlobStore,
  secondary: BlobStore,
  options: MirroredBlobStoreOptions = {},
): MirroredBlobStore {
  const logger = options.logger ?? silentLogger;
  const readBack = options.readBack ?? true;
  let report = emptyReport();
  let queue: Promise<void> = Promise.resolve();
  let pending = 0;

  const copyBlob = async (sha256: string, size: number): Promise<void> => {
    if ((await secondary.statBlob(sha256)) === size) return;
    const put = await secondary.putStream(primary.readBlob(sha256));
    if (put.sha256 !== sha256 || put.size !== size) {
      throw new BackupFailedError(`copying blob ${sha256} to ${secondary.location} stored other bytes`, {
        plugin: 'backup-rocksdb',
        details: { sha256 },
      });
    }
    if (readBack) {
      const back = await hashBlob(secondary, sha256, { concurrency: 1, chunkSize: 1 << 20 });
      if (back.sha256 !== sha256 || back.size !== size) {
        throw new BackupFailedError(`blob ${sha256} read back from ${secondary.location} differs`, {
          plugin: 'backup-rocksdb',
          details: { sha256 },
        });
      }
    }
    report.blobsCopied++;
    report.bytesCopied += size;
  };

  const copyBackup = async (id: string): Promise<void> => {
    const data = await primary.readDoc(manifestKey(id));
    if (!data || same(data, await secondary.readDoc(manifestKey(id)))) return;
    const manifest = parseManifest(data, `${primary.location} ${manifestKey(id)}`);
    const key = await primary.readDoc(KEY_DOC);
    const theirs = await secondary.readDoc(KEY_DOC);
    if (key && theirs && !same(key, theirs)) {
      throw new BackupFailedError(
        `${secondary.location} holds another repository's manifest key; give the offsite copy a place of its own`,
        { plugin: 'backup-rocksdb' },
      );
    }
    if (key && !theirs) await secondary.writeDoc(KEY_DOC, key, { private: true });
    const blobs = new Map(manifest.files.map((f) => [f.sha256, f.size]));
    for (const [sha256, size] of blobs) await copyBlob(sha256, size);
    for (const doc of [sumsKey(id), macKey(id)]) {
      const body = await primary.readDoc(doc);
      if (body) await secondary.writeDoc(doc, body);
    }
    await secondary.writeDoc(manifestKey(id), data);
    report.copied.push(id);
  };

  // Never rejects: a background copy that fails is reported (and retried by the next sync), never thrown.
  const syncAll = async (): Promise<void> => {
    let docs: string[];
    try {
      docs = await primary.listDocs('backups');
    } catch (err) {
      report.failed.push({ id: '*', error: err instanceof Error ? err.message : String(err) });
      return;
    }
    for (const doc of docs) {
      const id = /^backups\/([^/]+)\/manifest\.json$/.exec(doc)?.[1];
      if (!id) continue;
      try {
        await copyBackup(id);
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        logger.warn('backup-rocksdb: the offsite copy of a backup failed; the next sync retries it', {
          id,
          error,
        });
        report.failed.push({ id, error });
      }
    }
  };
  const schedule = (): Promise<void> => {
    pending++;
    const run = () => syncAll().finally(() => pending--);
    queue = queue.then(run, run);
    return queue;
  };
  const take = (): MirrorReport => {
    const out = report;
    report = emptyReport();
    return out;
  };

  const usePrimary = async (sha256: string, io: BlobIoOptions): Promise<boolean> => {
    if ((await primary.statBlob(sha256)) === undefined) return false;
    const got = await hashBlob(primary, sha256, { concurrency: 1, chunkSize: io.chunkSize ?? 1 << 20 }).catch(
      () => undefined,
    );
    return got?.sha256 === sha256;
  };

  return {
    primary,
    secondary,
    location: `${primary.location} + ${secondary.location}`,
    copies: () => [primary, secondary],
    async statBlob(sha256) {
      return (await primary.statBlob(sha256)) ?? (await secondary.statBlob(sha256));
    },
    putFile: (path, io) => primary.putFile(path, io),
    putStream: (source, io) => primary.putStream(source, io),
    async *readBlob(sha256, io = {}) {
      if (await usePrimary(sha256, io)) {
        yield* primary.readBlob(sha256, io);
        return;
      }
      logger.warn('backup-rocksdb: a blob is missing or damaged locally; reading the offsite copy', {
        sha256,
      });
      report.fallbacks.push(sha256);
      yield* secondary.readBlob(sha256, io);
    },
    async *listBlobs() {
      const seen = new Set<string>();
      for await (const b of primary.listBlobs()) {
        seen.add(b.sha256);
        yield b;
      }
      for await (const b of secondary.listBlobs()) if (!seen.has(b.sha256)) yield b;
    },
    async removeBlob(sha256) {
      await queue; // never collect under a copy in progress
      await primary.removeBlob(sha256);
      await secondary.removeBlob(sha256);
    },
    async readDoc(key) {
      return (await primary.readDoc(key)) ?? (await secondary.readDoc(key));
    },
    async writeDoc(key, data, doc) {
      await primary.writeDoc(key, data, doc);
      // A committed backup (its manifest is written last) is copied offsite in the background.
      if (/^backups\/[^/]+\/manifest\.json$/.test(key)) void schedule();
    },
    async listDocs(prefix) {
      const all = new Set([...(await primary.listDocs(prefix)), ...(await secondary.listDocs(prefix))]);
      return [...all].sort();
    },
    async removeDoc(key) {
      await queue;
      await primary.removeDoc(key);
      await secondary.removeDoc(key);
    },
    // A restore or a backup never waits for an offsite copy in progress; removals do (above).
    lock: () => primary.lock(),
    async cleanTemporary() {
      // The secondary's leftovers are only cleaned when no copy is writing there.
      const offsite = pending === 0 ? await secondary.cleanTemporary() : 0;
      return (await primary.cleanTemporary()) + offsite;
    },
    async sync() {
      await schedule();
      return take();
    },
    async settled() {
      await queue;
      return take();
    },
  };
}
