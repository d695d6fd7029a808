import type { Logger } from '@codegraph/release-core';
import { postgresStore, SCHEMA_VERSION } from '@codegraph/store-postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startPostgres, type TestPostgres } from './helpers/postgres.js';

// Secrets, schema versions, bad input and an unreachable database, on a real server.
const password = 'Sup3r-s3cret-Pa55';
let server: TestPostgres;
let url: string;
let appUrl: string;
beforeAll(async () => {
  server = await startPostgres();
  url = await server.createDatabase('safety');
  appUrl = await server.createRole('release_app', password, 'appdb');
});
afterAll(async () => {
  await server?.destroy();
});

function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (m: string, f?: Record<string, unknown>) => {
    lines.push(`${level} ${m}${f ? ` ${JSON.stringify(f)}` : ''}`);
  };
  return { lines, debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
}

const owner = { runId: 'run-1', pid: process.pid, host: 'host-a', since: new Date().toISOString() };
const everything = (err: unknown) =>
  JSON.stringify({
    err,
    message: (err as Error).message,
    cause: String((err as Error).cause),
    json: (err as { toJSON?: () => unknown }).toJSON?.(),
  });

describe('secrets', () => {
  it('a password role works, and a wrong password is a typed error that never shows either password', async () => {
    const store = postgresStore({ connectionString: appUrl, schema: 'app' });
    await store.append('run-1', { type: 'note', message: 'hello' });
    expect(await store.read('run-1')).toHaveLength(1);
    await store.close();

    const wrong = 'Wr0ng-pa55word-xyz';
    const logger = memoryLogger();
    const bad = postgresStore({
      connectionString: appUrl.replace(encodeURIComponent(password), wrong),
      schema: 'app',
      logger,
    });
    const err = await bad.runs().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CG_STORE_FAILED', plugin: 'postgres-store' });
    expect((err as Error).message).toMatch(/credentials/);
    const text = everything(err) + logger.lines.join('\n');
    expect(text).not.toContain(wrong);
    expect(text).not.toContain(password);
    await bad.close();
  });

  it('an unreachable server is CG_STORE_UNAVAILABLE naming host, port and database, without the password', async () => {
    const port = await freePort();
    const logger = memoryLogger();
    const store = postgresStore({
      connectionString: `postgres://release_app:${password}@127.0.0.1:${port}/appdb`,
      connectTimeoutMs: 2_000,
      logger,
    });
    const err = await store.lock('staging', owner).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CG_STORE_UNAVAILABLE', retryable: true });
    expect((err as Error).message).toContain(`127.0.0.1:${port}/appdb`);
    expect(everything(err) + logger.lines.join('\n')).not.toContain(password);
    await store.close();
  });

  it('the database going away under a held lease: writes fail typed, and the holder learns it lost the lease by its expiry', async () => {
    const own = await startPostgres();
    try {
      const dbUrl = await own.createRole('release_app', password, 'appdb');
      const logger = memoryLogger();
      const store = postgresStore({ connectionString: dbUrl, leaseMs: 800, connectTimeoutMs: 1_000, logger });
      const lock = await store.lock('staging', owner);
      const fence = { environment: 'staging', token: lock.token };
      await store.append('run-1', { type: 'note', message: 'before' }, fence);
      await own.stop();
      const err = await store
        .append('run-1', { type: 'note', message: 'during' }, fence)
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'CG_STORE_UNAVAILABLE' });
      const started = performance.now();
      await new Promise((resolve) => lock.lost.addEventListener('abort', resolve, { once: true }));
      expect(performance.now() - started).toBeLessThan(1_500);
      expect(lock.lost.reason).toMatchObject({ code: 'CG_LOCK_LOST' });
      await lock.release(); // does not throw while the database is down
      expect(everything(err) + logger.lines.join('\n')).not.toContain(password);
      await own.start();
      // Back: nothing journaled was lost, and the stale fence stays refused.
      expect((await store.read('run-1')).map((e) => e.type === 'note' && e.message)).toEqual(['before']);
      await expect(store.append('run-1', { type: 'note', message: 'late' }, fence)).rejects.toMatchObject({
        code: 'CG_LOCK_LOST',
      });
      await store.close();
    } finally {
      await own.destroy();
    }
  });
});

describe('schema', () => {
  it('is created once by racing stores, at this package’s version, in the schema asked for', async () => {
    const stores = Array.from({ length: 5 }, () =>
      postgresStore({ connectionString: url, schema: 'racing' }),
    );
    await Promise.all(stores.map((s, i) => s.append(`run-${i}`, { type: 'note', message: 'first use' })));
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const { rows } = await db.query('SELECT version FROM racing.schema_version');
    const tables = await db.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'racing' ORDER BY table_name`,
    );
    await db.end();
    expect(rows).toEqual([{ version: SCHEMA_VERSION }]);
    expect(tables.rows.map((r) => r.table_name)).toEqual([
      'control',
      'history',
      'journal',
      'leases',
      'runs',
      'schema_version',
    ]);
    for (const s of stores) await s.close();
  });

  it('a schema newer than the package is refused with a clear error, before anything is written', async () => {
    const first = postgresStore({ connectionString: url, schema: 'future' });
    await first.runs();
    await first.close();
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query('UPDATE future.schema_version SET version = $1', [SCHEMA_VERSION + 1]);
    const store = postgresStore({ connectionString: url, schema: 'future' });
    const err = await store.append('run-1', { type: 'note', message: 'x' }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'CG_STORE_FAILED',
      details: { found: SCHEMA_VERSION + 1, supported: SCHEMA_VERSION },
    });
    expect((err as Error).message).toMatch(/newer than this @codegraph\/store-postgres/);
    const { rows } = await db.query('SELECT count(*)::int AS n FROM future.journal');
    expect(rows[0].n).toBe(0);
    await db.end();
    await store.close();
  });
});

describe('bad input', () => {
  it('gets CG_CONFIG_INVALID before any statement is sent', async () => {
    // No server at all behind this store: a typed refusal proves nothing was sent.
    const store = postgresStore({ connectionString: `postgres://x@127.0.0.1:${await freePort()}/none` });
    const refused = [
      store.lock('../etc', owner),
      store.lock('staging', { ...owner, runId: 'run 1; drop table' }),
      store.append('run/../1', { type: 'note', message: 'x' }),
      store.append('run-1', { type: 'nonsense' } as never),
      store.append('run-1', { type: 'note', message: 'x' }, { environment: 'staging', token: -1 }),
      store.append('run-1', { type: 'note', message: 'x', data: { big: 'x'.repeat(2_000_000) } }),
      store.recordHistory('staging', { runId: 'run-1' } as never),
      store.history(''),
      store.runs('a'.repeat(200)),
    ];
    for (const p of refused) await expect(p).rejects.toMatchObject({ code: 'CG_CONFIG_INVALID' });
    await expect(store.withdrawControl('staging', 'x')).rejects.toMatchObject({ code: 'CG_CONTROL_INVALID' });
    await store.close();
  });

  it('options are checked when the store is made', () => {
    expect(() => postgresStore({} as never)).toThrow(expect.objectContaining({ code: 'CG_CONFIG_INVALID' }));
    expect(() => postgresStore({ connectionString: url, schema: 'Bad-Name' })).toThrow(
      expect.objectContaining({ code: 'CG_CONFIG_INVALID' }),
    );
    expect(() => postgresStore({ connectionString: url, leaseMs: 1_000, refreshEveryMs: 1_000 })).toThrow(
      expect.objectContaining({ code: 'CG_CONFIG_INVALID' }),
    );
  });

  it('a shared pool is used and left open by close()', async () => {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    pool.on('error', () => {}); // a connection still closing when the server stops at the end of the file
    const store = postgresStore({ pool, schema: 'shared' });
    await store.append('run-1', { type: 'note', message: 'x' });
    await store.close();
    expect((await pool.query('SELECT count(*)::int AS n FROM shared.journal')).rows[0].n).toBe(1);
    await pool.end();
  });
});
