import { StoreError } from '@codegraph/release-core';
import type pg from 'pg';
import { plugin, type ServerLabel, serverLabel, storeFailure } from './errors.js';
import type { ResolvedOptions } from './options.js';
import { migrate } from './schema.js';

/** One statement, prepared once per connection under `name`. */
export interface Statement {
  name: string;
  text: string;
}

/**
 * The store's access to its database: the schema made ready once, every failure turned into a typed
 * error without secrets, and nothing run after `close()`.
 */
export interface Db {
  readonly options: ResolvedOptions;
  readonly label: ServerLabel;
  /** The quoted schema name, for statement texts. */
  readonly s: string;
  /** Names a statement for this schema (prepared statements are per connection, shared by every store on a pool). */
  statement(key: string, text: string): Statement;
  query<R extends pg.QueryResultRow>(what: string, statement: Statement, values: unknown[]): Promise<R[]>;
  /** Resolves once the schema exists at this package's version. */
  ready(): Promise<void>;
  readonly closed: boolean;
  close(): Promise<void>;
}

export function createDb(options: ResolvedOptions): Db {
  const label = serverLabel(options.clientConfig);
  const { pool, logger, schema } = options;
  let closed = false;
  let readying: Promise<void> | undefined;
  // An idle connection the server drops emits on the pool; unheard, it would crash the process.
  const onPoolError = (err: Error) =>
    logger.warn(
      `postgres-store: an idle connection to ${label.where} failed: ${label.redactor.string(err.message)}`,
    );
  pool.on('error', onPoolError);

  const ready = (): Promise<void> => {
    if (closed) return Promise.reject(closedError());
    readying ??= migrate(pool, schema).catch((err: unknown) => {
      readying = undefined; // the next call tries again (the database may be back)
      throw storeFailure(err, 'create the store schema', label);
    });
    return readying;
  };

  return {
    options,
    label,
    s: `"${schema}"`,
    statement: (key, text) => ({ name: `cg_${schema}_${key}`, text }),
    async query<R extends pg.QueryResultRow>(what: string, statement: Statement, values: unknown[]) {
      await ready();
      if (closed) throw closedError();
      try {
        const result = await pool.query<R>({ name: statement.name, text: statement.text, values });
        return result.rows;
      } catch (err) {
        throw storeFailure(err, what, label);
      }
    },
    ready,
    get closed() {
      return closed;
    },
    async close() {
      if (closed) return;
      closed = true;
      // Our own pool keeps its listener: its connections may still report their end after pool.end().
      if (options.ownsPool) await pool.end().catch(() => {});
      else pool.off('error', onPoolError);
    },
  };
}

function closedError(): StoreError {
  return new StoreError('the postgres store was closed; make a new one', { plugin });
}
