import { ConfigInvalidError, type Logger, silentLogger } from '@codegraph/release-core';
import pg from 'pg';
import { plugin } from './errors.js';

/** Options of {@link postgresStore}. Give exactly one of `connectionString` and `pool`. */
export interface PostgresStoreOptions {
  /**
   * Where the database is: `postgres://user:password@host:5432/database` (or any form `pg` accepts). The
   * store makes its own `pg.Pool` from it and ends it on `close()`. The password never appears in errors
   * or logs.
   */
  connectionString?: string | undefined;
  /** An existing `pg.Pool` to share; the store never ends it. */
  pool?: pg.Pool | undefined;
  /** Connections of the pool the store makes from `connectionString`. @default 10 */
  max?: number | undefined;
  /**
   * The PostgreSQL schema (namespace) that holds the store's tables; created on first use. Lowercase
   * letters, digits and `_`, at most 40 characters. @default 'codegraph_release'
   */
  schema?: string | undefined;
  /**
   * How long a lease lasts without a refresh, in milliseconds: another host takes the environment over
   * this long after its holder died. @default 30_000
   */
  leaseMs?: number | undefined;
  /** How often a held lease is refreshed, in milliseconds. @default leaseMs / 3 */
  refreshEveryMs?: number | undefined;
  /**
   * How often control requests and replies are polled for, in milliseconds, while LISTEN/NOTIFY is not
   * connected (and once after every reconnect). @default 1_000
   */
  pollEveryMs?: number | undefined;
  /**
   * A control request nobody consumed for this long is refused as expired (`applied: false`) instead of
   * reaching a later run, in milliseconds. @default 60_000
   */
  controlExpiryMs?: number | undefined;
  /** Longest wait for a connection (new or from the pool), in milliseconds. @default 10_000 */
  connectTimeoutMs?: number | undefined;
  /** Longest wait for one statement's answer, in milliseconds. @default 30_000 */
  queryTimeoutMs?: number | undefined;
  /** Largest journal entry, history entry or control request, in bytes of JSON. @default 1_048_576 */
  maxEntryBytes?: number | undefined;
  /** Where reconnects and lost leases are reported. @default silentLogger */
  logger?: Logger | undefined;
}

/** The options with every default applied. */
export interface ResolvedOptions {
  pool: pg.Pool;
  ownsPool: boolean;
  clientConfig: pg.ClientConfig;
  schema: string;
  leaseMs: number;
  refreshEveryMs: number;
  pollEveryMs: number;
  controlExpiryMs: number;
  maxEntryBytes: number;
  logger: Logger;
}

const schemaPattern = /^[a-z_][a-z0-9_]{0,39}$/;

function positive(value: unknown, what: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ConfigInvalidError(`postgresStore: ${what} must be an integer of at least ${min}`, { plugin });
  }
  return value;
}

/** Checks the options before anything connects. */
export function resolveOptions(options: PostgresStoreOptions): ResolvedOptions {
  if (!options || typeof options !== 'object') {
    throw new ConfigInvalidError('postgresStore needs options: { connectionString } or { pool }', { plugin });
  }
  const hasString = options.connectionString !== undefined;
  if (hasString === (options.pool !== undefined)) {
    throw new ConfigInvalidError('postgresStore needs exactly one of `connectionString` and `pool`', {
      plugin,
    });
  }
  if (hasString && (typeof options.connectionString !== 'string' || options.connectionString === '')) {
    throw new ConfigInvalidError('postgresStore: `connectionString` must be a non-empty string', { plugin });
  }
  if (!hasString && typeof options.pool?.query !== 'function') {
    throw new ConfigInvalidError('postgresStore: `pool` must be a pg.Pool', { plugin });
  }
  const schema = options.schema ?? 'codegraph_release';
  if (typeof schema !== 'string' || !schemaPattern.test(schema)) {
    throw new ConfigInvalidError(
      'postgresStore: `schema` must be 1-40 lowercase letters, digits or `_`, not starting with a digit',
      { plugin },
    );
  }
  const leaseMs = positive(options.leaseMs, 'leaseMs', 30_000, 500);
  const refreshEveryMs = positive(options.refreshEveryMs, 'refreshEveryMs', Math.floor(leaseMs / 3), 50);
  if (refreshEveryMs >= leaseMs) {
    throw new ConfigInvalidError('postgresStore: refreshEveryMs must be shorter than leaseMs', { plugin });
  }
  const pollEveryMs = positive(options.pollEveryMs, 'pollEveryMs', 1_000, 20);
  const controlExpiryMs = positive(options.controlExpiryMs, 'controlExpiryMs', 60_000, 1_000);
  const connectTimeoutMs = positive(options.connectTimeoutMs, 'connectTimeoutMs', 10_000);
  const queryTimeoutMs = positive(options.queryTimeoutMs, 'queryTimeoutMs', 30_000);
  const maxEntryBytes = positive(options.maxEntryBytes, 'maxEntryBytes', 1_048_576, 1_024);
  const max = positive(options.max, 'max', 10);
  const common: pg.ClientConfig = {
    connectionTimeoutMillis: connectTimeoutMs,
    query_timeout: queryTimeoutMs,
    keepAlive: true,
    application_name: 'codegraph-release',
  };
  if (hasString) {
    const clientConfig = { connectionString: options.connectionString as string, ...common };
    const pool = new pg.Pool({ ...clientConfig, max, allowExitOnIdle: true });
    return {
      pool,
      ownsPool: true,
      clientConfig,
      schema,
      leaseMs,
      refreshEveryMs,
      pollEveryMs,
      controlExpiryMs,
      maxEntryBytes,
      logger: options.logger ?? silentLogger,
    };
  }
  const pool = options.pool as pg.Pool;
  return {
    pool,
    ownsPool: false,
    // The LISTEN connection is made like the pool's own connections.
    clientConfig: { ...(pool.options as pg.ClientConfig), ...common },
    schema,
    leaseMs,
    refreshEveryMs,
    pollEveryMs,
    controlExpiryMs,
    maxEntryBytes,
    logger: options.logger ?? silentLogger,
  };
}
