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
});
