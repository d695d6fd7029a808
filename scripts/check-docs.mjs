#!/usr/bin/env node
// Type-checks every ```ts block of docs/*.md, README.md and packages/*/README.md with the repo's
// strict compiler settings, so the documentation cannot drift from the API. Each block is its own
// module (blocks starting with `// file: <name>` keep that name, so they can import each other).
// Usage: node scripts/check-docs.mjs   (exit 1 and the compiler's messages, mapped to doc lines, on failure)
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsBlocks } from './doc-blocks.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const docs = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
  ...readdirSync(join(root, 'packages')).map((p) => join('packages', p, 'README.md')),
].filter((f) => {
  try {
    readdirSync(dirname(join(root, f)));
    return readdirSync(dirname(join(root, f))).includes(basename(f));
  } catch {
    return false;
  }
});

// Inside the repo, so the packages' dependencies resolve from node_modules as they do for users.
const out = join(root, 'node_modules', '.cache', 'check-docs');
rmSync(out, { recursive: true, force: true });
const where = new Map();
let count = 0;
for (const doc of docs) {
  const folder = join(out, doc.replace(/[/.]/g, '_'));
  mkdirSync(folder, { recursive: true });
  for (const block of tsBlocks(join(root, doc))) {
    const name = block.name ?? `block-${block.line}.ts`;
    const file = join(folder, name);
    // `export {}` makes every block a module: blocks never share top-level names.
    writeFileSync(file, `${block.code}\nexport {};\n`);
    where.set(relative(root, file), { doc, line: block.line });
    count++;
  }
}

const paths = {};
for (const [spec, target] of Object.entries({
  '@codegraph/release-core': 'packages/core/src/index.ts',
  '@codegraph/release-core/testing': 'packages/core/src/testing/index.ts',
  '@codegraph/release-core/kit': 'packages/core/src/kit/index.ts',
  '@codegraph/strategy-canary': 'packages/strategy-canary/src/index.ts',
  '@codegraph/strategy-bluegreen': 'packages/strategy-bluegreen/src/index.ts',
  '@codegraph/backup-rocksdb': 'packages/backup-rocksdb/src/index.ts',
  '@codegraph/notify': 'packages/notify/src/index.ts',
  '@codegraph/target-nginx': 'packages/target-nginx/src/index.ts',
  '@codegraph/release-cli': 'packages/cli/src/index.ts',
}))
  paths[spec] = [join(root, target)];
writeFileSync(
  join(out, 'tsconfig.json'),
  JSON.stringify({
    extends: join(root, 'tsconfig.base.json'),
    compilerOptions: { noEmit: true, declaration: false, sourceMap: false, paths, noUnusedLocals: false },
    include: ['**/*.ts'],
  }),
);

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', join(out, 'tsconfig.json'), '--pretty', 'false'], {
    cwd: root,
    encoding: 'utf8',
    stdio: 'pipe',
  });
  console.log(`check-docs: ${count} TypeScript blocks in ${docs.length} documents type-check`);
} catch (err) {
  const text = `${err.stdout ?? ''}${err.stderr ?? ''}`;
  const lines = text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      // node_modules/.cache/check-docs/docs_plugins_md/block-12.ts(3,5): error TS... -> docs/plugins.md:14
      const m = /^(.*?\.ts)\((\d+),(\d+)\): (.*)$/.exec(l);
      if (!m) return l;
      const hit = where.get(relative(root, join(root, m[1])));
      return hit ? `${hit.doc}:${hit.line + Number(m[2]) - 1}:${m[3]}: ${m[4]}` : l;
    });
  console.error(lines.join('\n'));
  console.error(`check-docs: a TypeScript block in the docs does not type-check (${count} blocks checked)`);
  process.exit(1);
}
