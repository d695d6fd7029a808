import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Proves each package's published shape: the built ESM and CJS entries load through the `exports`
// map, as a user's `import` and `require` would, and every export condition points at a real file.
const root = fileURLToPath(new URL('..', import.meta.url));
const packages = [
  'core',
  'strategy-canary',
  'strategy-bluegreen',
  'backup-rocksdb',
  'blobstore-s3',
  'notify',
  'target-nginx',
  'cli',
  'store-postgres',
];

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
}

type Conditions = { import: { types: string; default: string }; require: { types: string; default: string } };

describe.each(packages)('package %s as a consumer sees it', (dir) => {
  const manifest = JSON.parse(readFileSync(`${root}/packages/${dir}/package.json`, 'utf8')) as {
    name: string;
    exports: Record<string, Conditions | string>;
  };

  it('points every export condition at a built file', () => {
    for (const [subpath, target] of Object.entries(manifest.exports)) {
      if (typeof target === 'string') continue;
      for (const file of [
        target.import.types,
        target.import.default,
        target.require.types,
        target.require.default,
      ]) {
        expect(
          existsSync(`${root}/packages/${dir}/${file}`),
          `${manifest.name}${subpath.slice(1)} -> ${file}`,
        ).toBe(true);
      }
    }
  });

  it('loads with import and with require, exposing the same names', () => {
    const esm = node([
      '--input-type=module',
      '-e',
      `const m = await import('${manifest.name}'); console.log(JSON.stringify(Object.keys(m).sort()))`,
    ]);
    const cjs = node([
      '-e',
      `const m = require('${manifest.name}'); console.log(JSON.stringify(Object.keys(m).sort()))`,
    ]);
    const esmNames = JSON.parse(esm) as string[];
    expect(JSON.parse(cjs)).toEqual(esmNames);
    expect(esmNames.length).toBeGreaterThan(0);
  });
});

describe('release-core across module systems', () => {
  it('recognises an error from the CommonJS copy as a ReleaseError of the ESM copy (matched by brand and code)', () => {
    const out = node([
      '--input-type=module',
      '-e',
      `
      import { createRequire } from 'node:module';
      const esm = await import('@codegraph/release-core');
      const cjs = createRequire(process.cwd() + '/')('@codegraph/release-core');
      const err = new cjs.RollbackUnconfirmedError('x');
      console.log(JSON.stringify([
        err instanceof esm.ReleaseError,
        err instanceof esm.RollbackUnconfirmedError,
        err instanceof esm.VersionUnknownError,
        err.code,
        typeof cjs.createReleaseEngine,
      ]));
      `,
    ]);
    expect(JSON.parse(out)).toEqual([true, true, false, 'CG_ROLLBACK_UNCONFIRMED', 'function']);
  });
});
