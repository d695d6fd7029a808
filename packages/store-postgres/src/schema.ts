import { StoreError } from '@codegraph/release-core';
import type pg from 'pg';
import { plugin } from './errors.js';

/**
 * The schema version this package creates and understands. A database at a newer version is refused
 * (`CG_STORE_FAILED`, `details: { found, supported }`).
 *
 * @example
 * ```ts
 * import { SCHEMA_VERSION } from '@codegraph/store-postgres'
 * // SELECT version FROM codegraph_release.schema_version  -- equals SCHEMA_VERSION once migrated
 * ```
 */
export const SCHEMA_VERSION = 1;

/** Each migration brings the schema from the version before it to its index + 1. */
const migrations: Array<(s: string) => string[]> = [
  (s) => [
    `CREATE TABLE ${s}.leases (
      environment   text PRIMARY KEY,
      token         bigint NOT NULL,
      run_id        text,
      pid           integer,
      host          text,
      since         text,
      process_start text,
      expires_at    timestamptz NOT NULL,
      refreshed_at  timestamptz NOT NULL
    )`,
    `CREATE TABLE ${s}.runs (
      run_id      text PRIMARY KEY,
      environment text,
      kind        text,
      version     text,
      started_at  timestamptz,
      status      text,
      next_seq    integer NOT NULL,
      updated_at  timestamptz NOT NULL
    )`,
    `CREATE INDEX runs_by_environment ON ${s}.runs (environment, started_at DESC)`,
    `CREATE TABLE ${s}.journal (
      run_id text NOT NULL,
      seq    integer NOT NULL,
      type   text NOT NULL,
      at     timestamptz NOT NULL,
      entry  json NOT NULL,
      PRIMARY KEY (run_id, seq)
    )`,
    `CREATE TABLE ${s}.history (
      id          bigserial PRIMARY KEY,
      environment text NOT NULL,
      run_id      text NOT NULL,
      entry       json NOT NULL,
      recorded_at timestamptz NOT NULL
    )`,
    `CREATE INDEX history_by_environment ON ${s}.history (environment, id)`,
    `CREATE TABLE ${s}.control (
      seq           bigserial PRIMARY KEY,
      id            text NOT NULL UNIQUE,
      environment   text NOT NULL,
      run_id        text,
      action        text NOT NULL,
      full_promote  boolean,
      reason        text,
      requested_by  text,
      subject       text,
      created_at    timestamptz NOT NULL,
      consumed_by   text,
      consumed_at   timestamptz,
      withdrawn_at  timestamptz,
      reply_run_id  text,
      reply_applied boolean,
      reply_message text,
      replied_at    timestamptz
    )`,
    `CREATE INDEX control_pending ON ${s}.control (environment, seq)
      WHERE consumed_at IS NULL AND withdrawn_at IS NULL`,
  ],
];

function tooNew(found: number): StoreError {
  return new StoreError(
    `the database's codegraph schema is at version ${found}, newer than this @codegraph/store-postgres understands (${SCHEMA_VERSION}); upgrade the package on this host rather than let it write to a schema it does not know`,
    { plugin, details: { found, supported: SCHEMA_VERSION } },
  );
}

/**
 * Creates or upgrades the schema, once per database, whoever races to do it: the work happens in one
 * transaction behind a transaction-scoped advisory lock, and the version is recorded in the same
 * transaction. A schema already current costs one query and no lock.
 */
export async function migrate(pool: pg.Pool, schema: string): Promise<void> {
  const s = `"${schema}"`;
  try {
    const { rows } = await pool.query<{ version: number }>(`SELECT version FROM ${s}.schema_version`);
    const found = rows[0]?.version;
    if (found === SCHEMA_VERSION) return;
    if (typeof found === 'number' && found > SCHEMA_VERSION) throw tooNew(found);
  } catch (err) {
    // 42P01 undefined_table, 3F000 invalid_schema_name: first use, create below.
    const code = (err as { code?: unknown }).code;
    if (code !== '42P01' && code !== '3F000') throw err;
  }
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`codegraph_release:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_version (
      id         integer PRIMARY KEY CHECK (id = 1),
      version    integer NOT NULL,
      updated_at timestamptz NOT NULL
    )`);
    const { rows } = await client.query<{ version: number }>(
      `SELECT version FROM ${s}.schema_version WHERE id = 1`,
    );
    const found = rows[0]?.version ?? 0;
    if (found > SCHEMA_VERSION) throw tooNew(found);
    for (let v = found; v < SCHEMA_VERSION; v++) {
      for (const statement of migrations[v]!(s)) await client.query(statement);
    }
    await client.query(
      `INSERT INTO ${s}.schema_version (id, version, updated_at) VALUES (1, $1, now())
       ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, updated_at = EXCLUDED.updated_at`,
      [SCHEMA_VERSION],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw err;
  } finally {
    client.release(broken);
  }
}
