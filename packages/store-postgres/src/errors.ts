import { ReleaseError, StoreError, StoreUnavailableError } from '@codegraph/release-core';
import { createRedactor, type Redactor } from '@codegraph/release-core/kit';

export const plugin = 'postgres-store';

// SQLSTATE classes and codes that mean "the server cannot be reached or is going away": retry, then resume.
const unavailableStates = /^(08|57P0[1-3]|53300|53400|58)/;
const unavailableErrnos =
  /^(ECONNREFUSED|ECONNRESET|ECONNABORTED|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ENOENT)$/;
const unavailableMessages =
  /(Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|not queryable|Client was closed|Cannot use a pool after calling end|the database system is (starting up|shutting down|in recovery mode))/i;

/** What the store knows about its server, to describe it in messages without its secrets. */
export interface ServerLabel {
  /** `host:port/database`, never user or password. */
  where: string;
  redactor: Redactor;
}

/** Builds the label and a redactor that hides the password and any connection string. */
export function serverLabel(config: {
  connectionString?: string | undefined;
  host?: string | undefined;
  port?: number | undefined;
  database?: string | undefined;
  password?: unknown;
}): ServerLabel {
  const redactor = createRedactor(typeof config.password === 'string' ? [config.password] : []);
  let host = config.host;
  let port = config.port;
  let database = config.database;
  if (config.connectionString) {
    try {
      const url = new URL(config.connectionString);
      host = host ?? url.hostname;
      port = port ?? (url.port ? Number(url.port) : undefined);
      database = database ?? (url.pathname.replace(/^\//, '') || undefined);
      if (url.password) redactor.add(url.password, decodeURIComponent(url.password));
    } catch {
      // a keyword/value connection string: keep only its password out of messages
      const m = /password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/i.exec(config.connectionString);
      if (m) redactor.add(m[1]!.replace(/^'|'$/g, ''));
    }
  }
  const where = `${host ?? 'localhost'}:${port ?? 5432}/${database ?? '(default database)'}`;
  return { where: redactor.string(where), redactor };
}

/** Whether a pg or socket error means the server is unreachable (as opposed to a refused statement). */
export function isUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (unavailableStates.test(code) || unavailableErrnos.test(code))) return true;
  const message = (err as { message?: unknown }).message;
  if (typeof message === 'string' && unavailableMessages.test(message)) return true;
  const errors = (err as { errors?: unknown }).errors;
  if (Array.isArray(errors) && errors.length > 0) return errors.every(isUnavailable);
  return false;
}

/**
 * A typed error for a failed statement: `CG_STORE_UNAVAILABLE` when the server cannot be reached,
 * `CG_STORE_FAILED` otherwise. The pg error itself is not kept (it may carry row values or connection
 * details); its code and a redacted message are.
 */
export function storeFailure(err: unknown, what: string, label: ServerLabel): ReleaseError {
  if (err instanceof ReleaseError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const raw = err instanceof Error ? err.message || err.name : String(err);
  const message = label.redactor.string(raw).slice(0, 500);
  const cause = Object.assign(new Error(message), typeof code === 'string' ? { code } : {});
  const details = typeof code === 'string' ? { code } : undefined;
  if (isUnavailable(err)) {
    return new StoreUnavailableError(
      `PostgreSQL at ${label.where} is unreachable (trying to ${what}: ${message}); nothing was acknowledged: retry once the database is back, and resume a run it stopped`,
      { plugin, cause, ...(details ? { details } : {}) },
    );
  }
  if (code === '28P01' || code === '28000') {
    return new StoreError(
      `PostgreSQL at ${label.where} refused the credentials (${message}); check the user and password of the connection`,
      { plugin, cause, ...(details ? { details } : {}) },
    );
  }
  return new StoreError(`PostgreSQL at ${label.where} failed to ${what}: ${message}`, {
    plugin,
    cause,
    ...(details ? { details } : {}),
  });
}
