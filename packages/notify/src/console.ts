import type { Notifier } from '@codegraph/release-core';
import { noticeText } from './templates.js';
import { asNotifier, type DestinationOptions, destination } from './utils/destination.js';

/**
 * Options of {@link consoleNotifier}.
 *
 * @example
 * ```ts
 * const options: ConsoleOptions = { format: 'json', stream: process.stderr, minSeverity: 'P2' }
 * ```
 */
export interface ConsoleOptions
  extends Omit<
    DestinationOptions,
    'timeoutMs' | 'retries' | 'minIntervalMs' | 'maxRetryAfterMs' | 'minBackoffMs' | 'dispatcher'
  > {
  /** Where notices go. @default process.stdout */
  stream?: NodeJS.WritableStream;
  /** `text`: the runbook layout, a blank line between notices; `json`: one JSON notice per line. @default 'text' */
  format?: 'text' | 'json';
}

/**
 * Writes notices to a stream, in the runbook's layout or as JSON lines: for local runs, CI logs, and
 * as a fallback next to chat destinations.
 *
 * @example
 * ```ts
 * import { consoleNotifier } from '@codegraph/notify'
 * const notifier = consoleNotifier({ format: 'json', stream: process.stderr })
 * ```
 */
export function consoleNotifier(options: ConsoleOptions = {}): Notifier {
  const stream = options.stream ?? process.stdout;
  const format = options.format ?? 'text';
  const d = destination({
    system: 'console',
    options,
    target: format === 'json' ? 'json lines' : 'text',
    secrets: [],
    defaults: { minIntervalMs: 0 },
    async deliver(notice, _event, _send, signal) {
      signal.throwIfAborted();
      await write(stream, format === 'json' ? `${JSON.stringify(notice)}\n` : `${noticeText(notice)}\n\n`);
    },
  });
  return asNotifier(d);
}

function write(stream: NodeJS.WritableStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (err) => (err ? reject(err) : resolve()));
  });
}
