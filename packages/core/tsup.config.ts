import { copyFile } from 'node:fs/promises';
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/testing/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  splitting: false,
  // p-retry (and its dependency) is ESM-only; bundling it keeps the CommonJS build loadable on Node 20.18.
  noExternal: ['p-retry', 'is-network-error'],
  // The local target's proxy runs as its own process from a plain ESM file; ship it beside the bundles.
  onSuccess: async () => {
    await copyFile('src/target/local/proxy.mjs', 'dist/proxy.mjs');
  },
});
