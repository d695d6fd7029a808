import { randomBytes } from 'node:crypto';
import { chmod, copyFile, lstat, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ArtifactInvalidError, ConfigInvalidError } from '../errors.js';
import { checkIdentifier, checkVersion } from '../rules.js';
import type { ArtifactPublicKey } from './verify.js';
import { sha256File } from './verify.js';

/**
 * Where verified artifacts are installed, and the key that signs them: the engine's `artifacts` option.
 * Each version gets its own folder, so the current artifact is kept when a hotfix is installed and a
 * rollback starts the old one again.
 *
 * @example
 * ```ts
 * const artifacts: ArtifactOptions = { dir: '/opt/codegraph/releases', publicKey: pem, fileName: 'codegraph-api' }
 * const target = localTarget({
 *   stateDir,
 *   command: ({ version, port }) => ({ command: artifactPath(artifacts, version), args: ['--port', String(port)] }),
 * })
 * ```
 */
export interface ArtifactOptions {
  /** Installed artifacts live at `<dir>/<version>/<fileName>`. */
  dir: string;
  /** The ed25519 public key that signs the `SHA256SUMS` files. */
  publicKey: ArtifactPublicKey;
  /** The name every version's artifact is installed under, which the target's command template uses. @default 'artifact' */
  fileName?: string;
}

/** The default of {@link ArtifactOptions.fileName}. */
export const defaultArtifactFileName = 'artifact';

/**
 * Where the artifact of `version` is installed: the path a target's command template starts.
 *
 * @example
 * ```ts
 * artifactPath({ dir: '/opt/codegraph/releases', fileName: 'codegraph-api' }, 'v1.2.4')
 * // '/opt/codegraph/releases/v1.2.4/codegraph-api'
 * ```
 */
export function artifactPath(options: Pick<ArtifactOptions, 'dir' | 'fileName'>, version: string): string {
  checkVersion(version);
  return join(options.dir, version, options.fileName ?? defaultArtifactFileName);
}

/** Checks the engine's `artifacts` option; throws {@link ConfigInvalidError}. */
export function checkArtifactOptions(o: ArtifactOptions): void {
  if (!o || typeof o !== 'object') throw new ConfigInvalidError('artifacts must be { dir, publicKey }');
  if (typeof o.dir !== 'string' || o.dir.trim() === '')
    throw new ConfigInvalidError('artifacts.dir must be a directory path');
  if (typeof o.publicKey !== 'string' && (typeof o.publicKey !== 'object' || o.publicKey === null))
    throw new ConfigInvalidError('artifacts.publicKey must be a PEM string or a KeyObject');
  if (o.fileName !== undefined) checkIdentifier(o.fileName, 'artifacts.fileName (a plain file name)');
}

/** The SHA-256 of what is installed for `version`, or undefined when nothing is. */
export async function installedSha256(path: string): Promise<string | undefined> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return undefined;
  if (!st.isFile())
    throw new ArtifactInvalidError(`${path} exists and is not a regular file; nothing was changed`);
  return sha256File(path);
}

/**
 * Refuses a version whose folder already holds a different artifact: an installed artifact is never
 * replaced (the one running stays what it was). Same content is fine (a resumed or repeated install).
 */
export async function checkNotClobbering(path: string, sha256: string): Promise<void> {
  const have = await installedSha256(path);
  if (have !== undefined && have !== sha256) {
    throw new ArtifactInvalidError(
      `${path} already holds a different artifact (sha256 ${have}); installed artifacts are never replaced: release it under a new version; nothing was changed`,
      { details: { reason: 'installed-differs', path, installed: have, expected: sha256 } },
    );
  }
}

/**
 * Copies a verified artifact into place: to a temporary name beside it, fsynced, hashed again (the file
 * may have changed since it was verified), made read-only and executable, then renamed in. Idempotent.
 */
export async function installArtifact(
  file: string,
  path: string,
  sha256: string,
): Promise<{ path: string; sha256: string }> {
  await checkNotClobbering(path, sha256);
  if ((await installedSha256(path)) === sha256) return { path, sha256 };
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await copyFile(file, tmp);
    const handle = await open(tmp, 'r');
    await handle.sync().finally(() => handle.close());
    const copied = await sha256File(tmp);
    if (copied !== sha256) {
      throw new ArtifactInvalidError(
        `the artifact ${file} changed after it was verified (sha256 now ${copied}, verified ${sha256}); it was not installed`,
        { details: { reason: 'checksum', expected: sha256, actual: copied } },
      );
    }
    await chmod(tmp, 0o555);
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
  return { path, sha256 };
}
