import { postgresStore } from '@codegraph/store-postgres';
import pg from 'pg';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startPostgres, type TestPostgres } from './postgres.js';

type Options = Partial<Parameters<typeof postgresStore>[0]>;

/**
 * One PostgreSQL server for the calling test file, one schema per test: `fresh()` gives a store over an
 * empty schema (and `make()` more stores on it, as other hosts); every store is closed after each test.
 */
export function useSchemas(database: string) {
  let server: TestPostgres | undefined;
  let url = '';
  let n = 0;
  const opened: Array<{ close(): Promise<void> }> = [];
  beforeAll(async () => {
    server = await startPostgres();
    url = await server.createDatabase(database);
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
  });
  afterAll(async () => {
    await server?.destroy();
  });
  return {
    /** The test database's connection string (for a test that brings its own pool). */
    url: () => url,
    /** Runs SQL as the superuser: what an operator, or a buggy client, could do behind the store's back. */
    async sql(text: string): Promise<void> {
      const admin = new pg.Client({ connectionString: url });
      admin.on('error', () => {});
      await admin.connect();
      try {
        await admin.query(text);
      } finally {
        await admin.end();
      }
    },
    fresh(extra: Options = {}) {
      const schema = `t${++n}_${process.pid}`;
      const make = (more: Options = {}) => {
        const where = extra.pool || more.pool ? {} : { connectionString: url };
        const store = postgresStore({ ...where, schema, pollEveryMs: 100, ...extra, ...more });
        opened.push(store);
        return store;
      };
      return { schema, make, store: make() };
    },
  };
}
