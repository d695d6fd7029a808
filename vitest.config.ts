import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(`./packages/${p}`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the sources; test/consumer.test.ts checks the built packages.
    alias: [
      { find: /^@codegraph\/release-core\/kit$/, replacement: src('core/src/kit/index.ts') },
      { find: /^@codegraph\/release-core\/testing$/, replacement: src('core/src/testing/index.ts') },
      { find: /^@codegraph\/release-core$/, replacement: src('core/src/index.ts') },
      { find: /^@codegraph\/strategy-canary$/, replacement: src('strategy-canary/src/index.ts') },
      { find: /^@codegraph\/strategy-bluegreen$/, replacement: src('strategy-bluegreen/src/index.ts') },
      {
        find: /^@codegraph\/backup-rocksdb\/testing$/,
        replacement: src('backup-rocksdb/src/testing/index.ts'),
      },
      { find: /^@codegraph\/backup-rocksdb$/, replacement: src('backup-rocksdb/src/index.ts') },
      { find: /^@codegraph\/blobstore-s3$/, replacement: src('blobstore-s3/src/index.ts') },
      { find: /^@codegraph\/notify$/, replacement: src('notify/src/index.ts') },
      { find: /^@codegraph\/target-nginx$/, replacement: src('target-nginx/src/index.ts') },
      { find: /^@codegraph\/release-cli$/, replacement: src('cli/src/index.ts') },
      { find: /^@codegraph\/store-postgres$/, replacement: src('store-postgres/src/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
