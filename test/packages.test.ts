import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// What `npm publish` would ship: every package's published shape passes publint --strict and
// "Are the types wrong?" (every entry point, including `./testing` under the old `node10` resolution),
// and the changesets release plan keeps the packages in one version with peer ranges that accept it.
const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const dirs = readdirSync(`${root}/packages`).filter((d) => {
  try {
    return !JSON.parse(readFileSync(`${root}/packages/${d}/package.json`, 'utf8')).private;
  } catch {
    return false;
  }
});
type Manifest = {
  name: string;
  version: string;
  license?: string;
  repository?: { url?: string; directory?: string };
  homepage?: string;
  bugs?: { url?: string };
  files?: string[];
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
};
const manifest = (dir: string) =>
  JSON.parse(readFileSync(`${root}/packages/${dir}/package.json`, 'utf8')) as Manifest;
const bin = (pkg: string, file: string) => `${root}/node_modules/${pkg}/${file}`;

describe.each(dirs)('package %s as it would be published', (dir) => {
  const cwd = `${root}/packages/${dir}`;

  it('passes publint --strict', () => {
    const out = execFileSync(process.execPath, [bin('publint', 'src/cli.js'), '--strict'], {
      cwd,
      encoding: 'utf8',
    });
    expect(out).toContain('All good');
  }, 60_000);

  it('has types that resolve under node10, node16 (ESM and CJS) and bundlers', () => {
    // attw exits non-zero on any problem; its JSON lists them.
    const out = execFileSync(
      process.execPath,
      [bin('@arethetypeswrong/cli', 'dist/index.js'), '--pack', '.', '--format', 'json'],
      { cwd, encoding: 'utf8', maxBuffer: 64 << 20 },
    );
    const report = JSON.parse(out) as {
      problems: Record<string, unknown[]> | unknown[];
      analysis: {
        entrypoints: Record<string, { resolutions: Record<string, { resolution?: { fileName?: string } }> }>;
      };
    };
    expect(Object.values(report.problems).flat()).toEqual([]);
    // Every entry point (`./testing` too) resolves to a type file under each module resolution.
    for (const [entry, { resolutions }] of Object.entries(report.analysis.entrypoints)) {
      for (const kind of ['node10', 'node16-cjs', 'node16-esm', 'bundler']) {
        expect(resolutions[kind]?.resolution?.fileName, `${entry} under ${kind}`).toBeTruthy();
      }
    }
  }, 60_000);

  it('carries its license, repository, homepage, bugs and the tested Node versions', () => {
    const m = manifest(dir);
    expect(m.license).toBe('MIT');
    expect(m.files).toContain('LICENSE');
    expect(readFileSync(`${cwd}/LICENSE`, 'utf8')).toContain('MIT License');
    expect(m.repository?.directory).toBe(`packages/${dir}`);
    expect(m.homepage).toMatch(/^https:\/\//);
    expect(m.bugs?.url).toMatch(/^https:\/\//);
    expect(m.engines?.node).toBe('^20.18.0 || ^22.0.0 || ^24.0.0');
  });

  it('links only to absolute URLs from its README, so the links work on the registry page', () => {
    const readme = readFileSync(`${cwd}/README.md`, 'utf8');
    const relative = [...readme.matchAll(/\]\(([^)\s]+)\)/g)]
      .map((m) => m[1]!)
      .filter((href) => !/^(https?:|#|mailto:)/.test(href));
    expect(relative).toEqual([]);
  });

  it('bundles p-retry or depends on it, never both', () => {
    const m = manifest(dir);
    const tsup = readFileSync(`${cwd}/tsup.config.ts`, 'utf8');
    const bundled = tsup.includes('baseConfig') || tsup.includes("'p-retry'");
    if (bundled) expect(m.dependencies?.['p-retry']).toBeUndefined();
  });
});

describe('the next release as changesets would cut it', () => {
  it('versions every package together, and every peer range on core accepts the core it ships with', async () => {
    const semver = require('semver') as typeof import('semver');
    const getReleasePlan = require('@changesets/get-release-plan').default as (
      cwd: string,
    ) => Promise<{ releases: Array<{ name: string; newVersion: string; type: string }> }>;
    const plan = await getReleasePlan(root);
    const next = new Map(plan.releases.map((r) => [r.name, r.newVersion]));
    const versionOf = (dir: string) => next.get(manifest(dir).name) ?? manifest(dir).version;
    const core = versionOf('core');
    const versions = new Set(dirs.map(versionOf));
    expect([...versions]).toEqual([core]);
    for (const dir of dirs) {
      const range = manifest(dir).peerDependencies?.['@codegraph/release-core'];
      if (range === undefined) continue;
      expect(semver.satisfies(core, range), `${manifest(dir).name} peer ${range} vs core ${core}`).toBe(true);
      // Pre-1.0, a minor is breaking: the range must not claim a core major that does not exist yet.
      expect(semver.satisfies('1.0.0', range), `${manifest(dir).name} peer ${range}`).toBe(false);
    }
  }, 60_000);
});
