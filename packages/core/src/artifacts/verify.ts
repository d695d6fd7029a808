import { createHash, createPublicKey, type KeyObject, timingSafeEqual, verify } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { ArtifactInvalidError, ConfigInvalidError } from '../errors.js';

/**
 * Where a release artifact and its proofs are: the file, a `SHA256SUMS` listing (as `sha256sum` writes it)
 * that names the file, and a detached ed25519 signature over that listing.
 *
 * @example
 * ```ts
 * const artifact: ArtifactSource = {
 *   file: '/tmp/codegraph-v1.2.4.tar.gz',
 *   sums: '/tmp/SHA256SUMS',
 *   signature: '/tmp/SHA256SUMS.sig',
 * }
 * ```
 */
export interface ArtifactSource {
  /** The artifact file. */
  file: string;
  /** The `SHA256SUMS` file: lines of `<64 hex>  <name>` (or `<64 hex> *<name>`). */
  sums: string;
  /** The ed25519 signature of the `SHA256SUMS` file's bytes: 64 raw bytes, or their base64 text. */
  signature: string;
  /** The name the artifact has in `SHA256SUMS`. @default the file's base name */
  name?: string;
}

/** A public key: PEM text (`-----BEGIN PUBLIC KEY-----`) or a node:crypto `KeyObject`. */
export type ArtifactPublicKey = string | KeyObject;

/**
 * Options of {@link verifyArtifact}.
 *
 * @example
 * ```ts
 * const options: VerifyArtifactOptions = { file, sums, signature, publicKey: readFileSync('release.pub', 'utf8') }
 * ```
 */
export interface VerifyArtifactOptions extends ArtifactSource {
  /** The ed25519 key that signs releases. */
  publicKey: ArtifactPublicKey;
}

/** A verified artifact: its name in `SHA256SUMS`, its SHA-256 and size. */
export interface VerifiedArtifact {
  /** The path that was verified. */
  file: string;
  /** The name `SHA256SUMS` lists it under. */
  name: string;
  /** Lower-case hex SHA-256 of the file's content. */
  sha256: string;
  sizeBytes: number;
}

/**
 * Streams a file through SHA-256 (lower-case hex): memory stays flat for large artifacts.
 *
 * @example
 * ```ts
 * const hex = await sha256File('/opt/codegraph/releases/v1.2.4/codegraph-api')
 * ```
 */
export async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, signal ? { signal } : {})) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Parses `sha256sum` output into name → hash; a malformed line is refused (`CG_ARTIFACT_INVALID`) rather than skipped.
 *
 * @example
 * ```ts
 * parseSha256Sums('9f86…08  codegraph.tar.gz\n').get('codegraph.tar.gz') // '9f86…08'
 * ```
 */
export function parseSha256Sums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!m) {
      throw new ArtifactInvalidError(
        `SHA256SUMS line ${i + 1} is not "<sha256>  <name>"; nothing was changed`,
        {
          details: { reason: 'sums-malformed', line: i + 1 },
        },
      );
    }
    const name = m[2]!.replace(/^\.\//, '');
    if (out.has(name)) {
      throw new ArtifactInvalidError(`SHA256SUMS lists ${name} twice; nothing was changed`, {
        details: { reason: 'sums-malformed', name },
      });
    }
    out.set(name, m[1]!.toLowerCase());
  }
  return out;
}

function keyOf(publicKey: ArtifactPublicKey): KeyObject {
  let key: KeyObject;
  try {
    key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  } catch (err) {
    throw new ConfigInvalidError('publicKey must be an ed25519 public key in PEM form or a KeyObject', {
      cause: err,
    });
  }
  if (key.type !== 'public' || key.asymmetricKeyType !== 'ed25519') {
    throw new ConfigInvalidError(
      `publicKey must be an ed25519 public key, got a ${key.type} ${key.asymmetricKeyType ?? 'secret'} key`,
    );
  }
  return key;
}

function signatureBytes(raw: Buffer): Buffer {
  if (raw.length === 64) return raw;
  const text = raw.toString('utf8').trim();
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    const decoded = Buffer.from(text, 'base64');
    if (decoded.length === 64) return decoded;
  }
  throw new ArtifactInvalidError(
    'the signature is neither 64 raw bytes nor their base64 text (an ed25519 signature); nothing was changed',
    { details: { reason: 'signature-malformed' } },
  );
}

async function readInput(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ArtifactInvalidError(`cannot read the ${what} ${path}: ${(err as Error).message}`, {
      cause: err,
      details: { reason: 'unreadable', what },
    });
  }
}

/** Checks the options' shapes; throws {@link ConfigInvalidError}. */
export function checkArtifactSource(source: unknown, what = 'artifact'): ArtifactSource {
  const s = source as Record<string, unknown> | null;
  if (!s || typeof s !== 'object') throw new ConfigInvalidError(`${what} must be { file, sums, signature }`);
  for (const k of ['file', 'sums', 'signature'] as const) {
    if (typeof s[k] !== 'string' || (s[k] as string).trim() === '')
      throw new ConfigInvalidError(`${what}.${k} must be a file path`);
  }
  if (s.name !== undefined && (typeof s.name !== 'string' || s.name === ''))
    throw new ConfigInvalidError(`${what}.name must be a non-empty string`);
  return s as unknown as ArtifactSource;
}

/**
 * Verifies a release artifact as the runbook's hotfix script does, with node:crypto and no side effect:
 * first the ed25519 signature over `SHA256SUMS` (so the listing itself is trusted), then that the listing
 * names the file, then the file's SHA-256 against it. Any failure is an {@link ArtifactInvalidError}
 * (`CG_ARTIFACT_INVALID`, `details.reason` one of `signature`, `signature-malformed`, `sums-malformed`,
 * `not-listed`, `checksum`, `unreadable`); bad options are `CG_CONFIG_INVALID`.
 *
 * @example
 * ```ts
 * import { verifyArtifact } from '@codegraph/release-core'
 *
 * const ok = await verifyArtifact({
 *   file: 'codegraph-v1.2.4.tar.gz',
 *   sums: 'SHA256SUMS',
 *   signature: 'SHA256SUMS.sig',
 *   publicKey: readFileSync('release-signing.pub', 'utf8'),
 * })
 * console.log(ok.sha256)
 * ```
 */
export async function verifyArtifact(options: VerifyArtifactOptions): Promise<VerifiedArtifact> {
  const source = checkArtifactSource(options, 'verifyArtifact options');
  const key = keyOf(options.publicKey);
  const sums = await readInput(source.sums, 'SHA256SUMS file');
  const signature = signatureBytes(await readInput(source.signature, 'signature'));
  if (!verify(null, sums, key, signature)) {
    throw new ArtifactInvalidError(
      `the signature of ${basename(source.sums)} does not verify with the release key: the listing was altered or signed by another key; nothing was changed`,
      { details: { reason: 'signature', sums: source.sums } },
    );
  }
  const name = source.name ?? basename(source.file);
  const expected = parseSha256Sums(sums.toString('utf8')).get(name);
  if (!expected) {
    throw new ArtifactInvalidError(`${basename(source.sums)} does not list ${name}; nothing was changed`, {
      details: { reason: 'not-listed', name },
    });
  }
  let actual: string;
  let sizeBytes: number;
  try {
    sizeBytes = (await stat(source.file)).size;
    actual = await sha256File(source.file);
  } catch (err) {
    throw new ArtifactInvalidError(`cannot read the artifact ${source.file}: ${(err as Error).message}`, {
      cause: err,
      details: { reason: 'unreadable', what: 'artifact' },
    });
  }
  if (!timingSafeEqual(Buffer.from(actual, 'hex'), Buffer.from(expected, 'hex'))) {
    throw new ArtifactInvalidError(
      `the SHA-256 of ${name} is ${actual} but the signed ${basename(source.sums)} says ${expected}: the artifact was altered; nothing was changed`,
      { details: { reason: 'checksum', name, expected, actual } },
    );
  }
  return { file: source.file, name, sha256: actual, sizeBytes };
}
