import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The plugin's own test run. `@codegraph/release-core` resolves like any consumer's would: to the
// published shape (the built package), not to the SDK's sources.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  test: {
    include: ['test/**/*.test.ts'],
    // Load the SDK as Node loads it for a user (its built files run unchanged), not through Vite's transform.
    server: { deps: { external: [/\/packages\/core\/dist\//, /@codegraph\/release-core/] } },
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
