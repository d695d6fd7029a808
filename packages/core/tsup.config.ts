import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { defineConfig } from 'tsup';
import { baseConfig } from '../../tsup.base.js';

export default defineConfig((cli) => ({
  ...baseConfig,
  entry: ['src/index.ts', 'src/testing/index.ts', 'src/kit/index.ts'],
  // `import.meta.url` in the CommonJS build (the local target locates proxy.mjs with it).
  shims: true,
  // The local target's proxy runs as its own process from a plain ESM file; ship it beside the bundles
  // (in `--out-dir` too, which the local target's built-package test uses).
  onSuccess: async () => {
    await copyFile('src/target/local/proxy.mjs', path.join(cli.outDir ?? 'dist', 'proxy.mjs'));
  },
}));
