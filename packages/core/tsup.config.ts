import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { defineConfig } from 'tsup';

export default defineConfig((cli) => ({
  entry: ['src/index.ts', 'src/testing/index.ts', 'src/kit/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  splitting: false,
  // `import.meta.url` in the CommonJS build (the local target locates proxy.mjs with it).
  shims: true,
  // p-retry (and its dependency) is ESM-only; bundling it keeps the CommonJS build loadable on Node 20.18.
  noExternal: ['p-retry', 'is-network-error'],
  // The local target's proxy runs as its own process from a plain ESM file; ship it beside the bundles
  // (in `--out-dir` too, which the local target's built-package test uses).
  onSuccess: async () => {
    await copyFile('src/target/local/proxy.mjs', path.join(cli.outDir ?? 'dist', 'proxy.mjs'));
  },
}));
