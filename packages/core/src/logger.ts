import type { Redactor } from './util/redact.js';

/** Structured fields of a log line. Secrets are redacted before a logger sees them. */
export type LogFields = Record<string, unknown>;

/**
 * The logger the engine and plugins write to: **message first, fields second**
 * (`logger.info('routed', { weights })`). `console`, winston (`info(message, meta)`) and this SDK's
 * `consoleLogger` have this shape. Fields-first loggers (pino, bunyan: `info(fields, message)`) are
 * accepted as the engine's `logger` too: see {@link LoggerInput}. `child` is optional; when present the
 * engine scopes lines to a plugin with it.
 *
 * @example
 * ```ts
 * const logger: Logger = { debug() {}, info: (m, f) => console.log(m, f), warn: console.warn, error: console.error }
 * ```
 */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger whose every line carries `bindings`. */
  child?(bindings: LogFields): Logger;
}

/** A fields-first logger: pino and bunyan take `(fields, message)`, and `child(bindings)`. */
export interface FieldsFirstLogger {
  debug(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
  child(bindings: object): FieldsFirstLogger;
  /** pino's own method: how a pino logger is told apart at run time. */
  bindings?: () => object;
}

/**
 * What the engine's `logger` option accepts: a message-first {@link Logger} (console, winston,
 * `consoleLogger`) or a fields-first one (pino, bunyan), told apart at run time (pino by its
 * `bindings()` method, bunyan by its `streams`). Wrap any other fields-first library with
 * {@link fieldsFirst}.
 */
export type LoggerInput = Logger | FieldsFirstLogger;

const levelNames = ['debug', 'info', 'warn', 'error'] as const;
const fieldsFirstBrand = Symbol.for('codegraph.release.logger.fieldsFirst');

/**
 * Marks a logger as fields-first (`info(fields, message)`) for libraries {@link toLogger} does not
 * recognise by itself.
 *
 * @example
 * ```ts
 * createReleaseEngine({ ...options, logger: fieldsFirst(myStructuredLogger) })
 * ```
 */
export function fieldsFirst<T extends FieldsFirstLogger>(logger: T): T {
  return Object.assign(Object.create(logger) as T, { [fieldsFirstBrand]: true });
}

function isFieldsFirst(logger: object): logger is FieldsFirstLogger {
  const l = logger as Record<string | symbol, unknown>;
  return (
    l[fieldsFirstBrand] === true ||
    (typeof l.bindings === 'function' && typeof l.child === 'function') ||
    (Array.isArray(l.streams) && typeof l.fields === 'object')
  );
}

/**
 * Adapts any accepted logger to the SDK's {@link Logger}: fields-first loggers get `(fields, message)`,
 * message-first ones `(message, fields)`; every structured field is kept; `child` uses the library's own
 * child loggers when it has them. With a redactor, messages and fields are redacted first.
 *
 * @example
 * ```ts
 * import pino from 'pino'
 * const logger = toLogger(pino())
 * logger.child?.({ plugin: 'nginx' }).info('reloaded', { generation: 'k3x9' })
 * // {"level":30,"plugin":"nginx","generation":"k3x9","msg":"reloaded",...}
 * ```
 */
export function toLogger(input: LoggerInput | undefined, redactor?: Redactor): Logger {
  if (input === undefined) return silentLogger;
  const message = (m: string) => (redactor ? redactor.string(String(m)) : String(m));
  const fields = (f: LogFields | undefined) => (f && redactor ? redactor.value(f) : f);
  if (isFieldsFirst(input)) {
    const write = (level: (typeof levelNames)[number]) => (m: string, f?: LogFields) =>
      input[level].call(input, fields(f) ?? {}, message(m));
    return {
      debug: write('debug'),
      info: write('info'),
      warn: write('warn'),
      error: write('error'),
      child: (bindings) => toLogger(input.child((fields(bindings) ?? {}) as object), redactor),
    };
  }
  const l = input as Logger;
  const write = (level: (typeof levelNames)[number]) => (m: string, f?: LogFields) => {
    const safe = fields(f);
    if (safe === undefined) l[level].call(l, message(m));
    else l[level].call(l, message(m), safe);
  };
  return {
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    child: (bindings) => {
      const safe = fields(bindings) ?? {};
      if (typeof l.child === 'function') return toLogger(l.child(safe), redactor);
      // No child loggers in the library: carry the bindings in every line's fields.
      const parent = toLogger(l, redactor);
      const merged = (level: (typeof levelNames)[number]) => (m: string, f?: LogFields) =>
        parent[level](m, { ...safe, ...f });
      return { debug: merged('debug'), info: merged('info'), warn: merged('warn'), error: merged('error') };
    },
  };
}

/**
 * A logger scoped to `bindings` (e.g. `{ plugin: 'nginx' }`): the library's own child logger when it has
 * one, else `bindings` merged into every line's fields.
 *
 * @example
 * ```ts
 * const log = childLogger(ctx.logger ?? silentLogger, { plugin: 'my-lb' })
 * ```
 */
export function childLogger(logger: Logger, bindings: LogFields): Logger {
  return logger.child?.(bindings) ?? toLogger(logger).child!(bindings);
}

/** A logger that drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Options of {@link consoleLogger}. */
export interface ConsoleLoggerOptions {
  /** Lowest level printed. @default 'info' */
  level?: 'debug' | 'info' | 'warn' | 'error';
  /** Where lines go. @default process.stderr */
  stream?: NodeJS.WritableStream;
}

const levels = { debug: 10, info: 20, warn: 30, error: 40 } as const;

/**
 * Plain one-line-per-event logger: `12:00:01.123 info  [production] deploy: action 2/5 route v2=20`.
 */
export function consoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  const min = levels[options.level ?? 'info'];
  const stream = options.stream ?? process.stderr;
  const write = (level: keyof typeof levels, message: string, fields?: LogFields) => {
    if (levels[level] < min) return;
    const time = new Date().toISOString().slice(11, 23);
    const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
    stream.write(`${time} ${level.padEnd(5)} ${message}${extra}\n`);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}
