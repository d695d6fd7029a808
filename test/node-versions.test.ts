import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

// The engines field promises Node 20.18+, 22 and 24. This runs the built packages on the Node 22 and 24
// binaries published on the npm registry (the `node` package), as a consumer would: ESM import, CJS
// require, and the demo release on the embedded local target.
const root = fileURLToPath(new URL('..', import.meta.url));
const packages = [
  'core',
  'strategy-canary',
  'strategy-bluegreen',
  'backup-rocksdb',
  'notify',
  'target-nginx',
  'cli',
  'store-postgres',
  'blobstore-s3',
];
const names = packages.map(
  (dir) =>
    (JSON.parse(readFileSync(`${root}/packages/${dir}/package.json`, 'utf8')) as { name: string }).name,
);

function nodeBinary(major: number): string {
  // `npx -p node@N` installs the registry's Node binary into npm's cache once; later runs reuse it.
  return execFileSync(
    'npx',
    ['-y', '-p', `node@${major}`, 'node', '-e', 'process.stdout.write(process.execPath)'],
    {
      cwd: root,
      encoding: 'utf8',
      timeout: 180_000,
    },
  );
}

describe.each([22, 24])('the built packages on Node %i', (major) => {
  let node = '';
  beforeAll(() => {
    node = nodeBinary(major);
  }, 240_000);

  const run = (args: string[], timeout = 60_000) =>
    execFileSync(node, args, {
      cwd: root,
      encoding: 'utf8',
      timeout,
      env: { ...process.env, FORCE_COLOR: '0' },
    });

  it('runs the Node version it claims to', () => {
    expect(run(['-p', 'process.versions.node.split(".")[0]']).trim()).toBe(String(major));
  });

  it('loads every package with import and with require, exposing the same names', () => {
    const script = `
      const { createRequire } = await import('node:module');
      const require = createRequire(process.cwd() + '/');
      const out = {};
      for (const name of ${JSON.stringify(names)}) {
        const esm = Object.keys(await import(name)).sort();
        const cjs = Object.keys(require(name)).sort();
        out[name] = { same: JSON.stringify(esm) === JSON.stringify(cjs), count: esm.length };
      }
      console.log(JSON.stringify(out));
    `;
    const out = JSON.parse(run(['--input-type=module', '-e', script])) as Record<
      string,
      { same: boolean; count: number }
    >;
    for (const name of names) {
      expect(out[name]?.same, name).toBe(true);
      expect(out[name]?.count, name).toBeGreaterThan(0);
    }
  });

  it('runs the demo release on the local target: v1 and v2 succeed, the faulty v3 is rolled back', () => {
    const out = run(['examples/demo.mjs'], 120_000);
    expect(out).toMatch(/v1\s+succeeded/);
    expect(out).toMatch(/v2\s+succeeded/);
    expect(out).toMatch(/v3\s+rolled-back/);
    expect(out).toContain('now serving v2');
  }, 150_000);
});
