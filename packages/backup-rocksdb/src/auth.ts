import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { BackupCorruptError } from '@codegraph/release-core';
import type { BlobStore } from './blob-store.js';
import { type BackupManifest, formatSha256Sums, parseManifest } from './manifest.js';

// A backup's records: `manifest.json`, `SHA256SUMS` (written first, `sha256sum -c` compatible) and
// `manifest.hmac`, an HMAC-SHA256 of the exact manifest bytes under the repository's own key
// (`keys/manifest-hmac`, created on first use, private). Each record is checked against the others on every
// read: a manifest edited consistently (sizes and hashes swapped between files, every blob intact) no longer
// matches SHA256SUMS, and one edited together with SHA256SUMS no longer matches its HMAC.

export const KEY_DOC = 'keys/manifest-hmac';
export const manifestKey = (id: string) => `backups/${id}/manifest.json`;
export const sumsKey = (id: string) => `backups/${id}/SHA256SUMS`;
export const macKey = (id: string) => `backups/${id}/manifest.hmac`;

/** The repository's manifest key, or undefined in a repository made before keys existed. */
export async function readKey(store: BlobStore): Promise<Buffer | undefined> {
  const data = await store.readDoc(KEY_DOC);
  if (!data) return undefined;
  const hex = Buffer.from(data).toString('utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new BackupCorruptError(
      `${store.location} ${KEY_DOC} is not a manifest key; restore it from a copy`,
      {
        plugin: 'backup-rocksdb',
        details: { key: KEY_DOC },
      },
    );
  }
  return Buffer.from(hex, 'hex');
}

export function macOf(key: Buffer, manifestBytes: Uint8Array): string {
  return createHmac('sha256', key).update(manifestBytes).digest('hex');
}

/** The bytes a manifest is stored as (and authenticated over). */
export function manifestBytes(manifest: BackupManifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
}

function damaged(store: BlobStore, id: string, reason: string): BackupCorruptError {
  return new BackupCorruptError(
    `backup ${id} in ${store.location} is damaged: ${reason}; it cannot be trusted, choose another backup`,
    { plugin: 'backup-rocksdb', details: { id, reason } },
  );
}

/**
 * Checks one backup's records against each other: the manifest parses completely, SHA256SUMS lists exactly
 * its files, and (once the repository has a key) its HMAC is right. Throws `CG_BACKUP_CORRUPT` otherwise.
 */
export async function checkRecords(
  store: BlobStore,
  id: string,
  data: Uint8Array,
  key: Buffer | undefined,
): Promise<BackupManifest> {
  let manifest: BackupManifest;
  try {
    manifest = parseManifest(data, `backups/${id}/manifest.json`);
  } catch (err) {
    throw damaged(store, id, err instanceof Error ? err.message : String(err));
  }
  if (manifest.id !== id) throw damaged(store, id, `its manifest names another backup (${manifest.id})`);
  const sums = await store.readDoc(sumsKey(id));
  if (!sums) throw damaged(store, id, 'SHA256SUMS is missing');
  if (Buffer.from(sums).toString('utf8') !== formatSha256Sums(manifest.files)) {
    throw damaged(store, id, 'the manifest does not match SHA256SUMS');
  }
  if (key) {
    const mac = await store.readDoc(macKey(id));
    const want = Buffer.from(macOf(key, data), 'utf8');
    const got = mac ? Buffer.from(Buffer.from(mac).toString('utf8').trim(), 'utf8') : Buffer.alloc(0);
    if (got.length !== want.length || !timingSafeEqual(got, want)) {
      throw damaged(store, id, mac ? 'the manifest fails its authentication' : 'manifest.hmac is missing');
    }
  }
  return manifest;
}

/**
 * The repository's key, created on first use (under the repository lock). The manifests already there are
 * adopted when their records agree (SHA256SUMS), then the key is written last: a crash in between leaves the
 * repository as it was.
 */
export async function ensureKey(store: BlobStore): Promise<Buffer> {
  const existing = await readKey(store);
  if (existing) return existing;
  const key = randomBytes(32);
  for (const doc of await store.listDocs('backups')) {
    const id = /^backups\/([^/]+)\/manifest\.json$/.exec(doc)?.[1];
    if (!id) continue;
    const data = await store.readDoc(doc);
    if (!data) continue;
    const ok = await checkRecords(store, id, data, undefined).then(
      () => true,
      () => false,
    );
    if (ok) await store.writeDoc(macKey(id), `${macOf(key, data)}\n`);
  }
  await store.writeDoc(KEY_DOC, `${key.toString('hex')}\n`, { private: true });
  return key;
}
