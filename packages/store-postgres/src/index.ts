// @codegraph/store-postgres: core's Store on PostgreSQL.

export type { PostgresStoreOptions } from './options.js';
export { SCHEMA_VERSION } from './schema.js';
export { type PostgresStore, postgresStore } from './store.js';
