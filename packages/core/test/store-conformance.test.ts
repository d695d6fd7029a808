import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileStore } from '../src/index.js';
import { testStore } from '../src/testing/index.js';

// The file store passes the same suite as every other store. Holders in other processes open it with
// the built package (`npm run build` first), like a second `codegraph-release` would.
const staleAfterMs = 1_500;
const refreshEveryMs = 250;

testStore({
  name: 'file store',
  staleAfterMs,
  childModule: new URL('./fixtures/open-file-store.mjs', import.meta.url).href,
  async create() {
    const dir = await fs.mkdtemp(join(tmpdir(), 'cg-store-suite-'));
    return {
      store: fileStore({ dir, staleAfterMs, refreshEveryMs, controlPollMs: 50 }),
      childEnv: {
        CG_SUITE_STORE_DIR: dir,
        CG_SUITE_STALE_MS: String(staleAfterMs),
        CG_SUITE_REFRESH_MS: String(refreshEveryMs),
      },
      cleanup: () => fs.rm(dir, { recursive: true, force: true }),
    };
  },
});
