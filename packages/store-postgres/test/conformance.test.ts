import { testStore } from '@codegraph/release-core/testing';
import { postgresStore } from '@codegraph/store-postgres';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { startPostgres, type TestPostgres } from './helpers/postgres.js';

// The postgres store passes core's Store conformance suite, on one real server for the file with a fresh
// schema per test. Holders in other processes open it from the built package (`npm run build` first).
const leaseMs = 1_500;
let server: TestPostgres;
let url: string;
let n = 0;
beforeAll(async () => {
  server = await startPostgres();
  url = await server.createDatabase('conformance');
});
afterAll(async () => {
  await server?.destroy();
});

testStore({
  name: 'postgres store',
  staleAfterMs: leaseMs,
  childModule: new URL('./fixtures/open-store.mjs', import.meta.url).href,
  create() {
    const schema = `suite_${++n}`;
    return {
      store: postgresStore({ connectionString: url, schema, leaseMs, pollEveryMs: 50 }),
      childEnv: { CG_SUITE_PG_URL: url, CG_SUITE_PG_SCHEMA: schema, CG_SUITE_LEASE_MS: String(leaseMs) },
      async cleanup() {
        const db = new pg.Client({ connectionString: url });
        await db.connect();
        await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await db.end();
      },
    };
  },
});
