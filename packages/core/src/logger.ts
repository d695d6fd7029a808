/** Structured fields of a log line. Secrets are redacted before a logger sees them. */
export type LogFields = Record<string, unknown>;

/** The logger the engine and plugins write to. Any pino/winston/console-like object fits. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
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
