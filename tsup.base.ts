import type { Options } from 'tsup';

/**
 * The build every package shares: ESM and CommonJS with types for each, for Node 20.18+.
 * p-retry (and its dependency) is ESM-only; it is bundled so the CommonJS build loads on Node 20.18,
 * and so it is a devDependency of the packages that use it, never also a runtime dependency.
 */
export const baseConfig = {
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  splitting: false,
  noExternal: ['p-retry', 'is-network-error'],
} satisfies Options;
