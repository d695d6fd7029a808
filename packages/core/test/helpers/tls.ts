import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A self-signed certificate for `127.0.0.1` (and `localhost`) in a temp directory. */
export interface TestCertificate {
  dir: string;
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
  /** Removes the temp directory. */
  remove(): void;
}

/**
 * Generates a throw-away self-signed certificate with the real `openssl` binary. A missing binary fails
 * the test with the command that installs it, never a skip.
 *
 * @example
 * ```ts
 * const tls = makeCertificate(); afterAll(() => tls.remove());
 * https.createServer({ cert: tls.cert, key: tls.key }, handler)
 * ```
 */
export function makeCertificate(): TestCertificate {
  const dir = mkdtempSync(path.join(tmpdir(), 'cg-tls-'));
  const certPath = path.join(dir, 'cert.pem');
  const keyPath = path.join(dir, 'key.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        keyPath,
        '-out',
        certPath,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(
        'openssl is not installed: run `bash scripts/install-test-deps.sh` (Debian package openssl)',
      );
    }
    throw err;
  }
  return {
    dir,
    certPath,
    keyPath,
    cert: readFileSync(certPath, 'utf8'),
    key: readFileSync(keyPath, 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
