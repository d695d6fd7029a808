import type { BlobStore } from './blob-store.js';
import { SHA256 } from './blob-store.js';

// When each blob was last read back and found to hold exactly its content (written and hashed, compared with
// the file it backs up, or hashed by a verification). An incremental backup reuses a blob without reading it
// again only while this record is recent (`reuseVerifiedWithinMs`); otherwise it reads it back first. A
// verification that finds a blob damaged drops its record, so the next backup writes it again.

const DOC = 'state/verified-blobs.json';

/** The record, tolerant of a missing or damaged document (an empty record only costs extra reads). */
export async function readVerified(store: BlobStore, now: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const data = await store.readDoc(DOC).catch(() => undefined);
  if (!data) return out;
  try {
    const v = JSON.parse(Buffer.from(data).toString('utf8')) as Record<string, unknown>;
    for (const [sha256, at] of Object.entries(v)) {
      // A time in the future is not believed.
      if (SHA256.test(sha256) && typeof at === 'number' && Number.isFinite(at) && at <= now)
        out.set(sha256, at);
    }
  } catch {
    return out;
  }
  return out;
}

/** Writes the record back, keeping only the blobs in `keep` when it is given. */
export async function writeVerified(
  store: BlobStore,
  record: ReadonlyMap<string, number>,
  keep?: ReadonlySet<string>,
): Promise<void> {
  const out: Record<string, number> = {};
  for (const [sha256, at] of [...record].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (!keep || keep.has(sha256)) out[sha256] = at;
  }
  await store.writeDoc(DOC, `${JSON.stringify(out)}\n`);
}
