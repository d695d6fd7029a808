import type { OperationContext } from '../context.js';
import type { ReleaseEvent, ReleaseEventType } from '../events/types.js';

/**
 * Tells people and systems what a release does. The engine fans events out to every notifier in
 * isolation: a failing notifier is retried, then reported as a `notification.failed` event and a
 * metric, and never fails or blocks a release or a rollback.
 *
 * @example
 * ```ts
 * const log = {
 *   name: 'stdout',
 *   events: ['run.finished'],
 *   async notify(event) { console.log(event.type, event.status) },
 * } satisfies Notifier
 * ```
 */
export interface Notifier {
  readonly name: string;
  /**
   * The credentials this notifier holds (webhook URLs, tokens, routing keys, signing secrets): the
   * engine's redactor learns them, so they never reach logs, events, errors or the journal.
   * @default []
   */
  readonly secrets?: ReadonlyArray<string>;
  /** Event types this notifier wants; default every type. */
  readonly events?: ReadonlyArray<ReleaseEventType>;
  /** Delivers one event. Throwing a retryable error asks the engine to retry. */
  notify(event: ReleaseEvent, ctx?: OperationContext): Promise<void>;
  /** Waits for queued deliveries, then releases resources. */
  close?(): Promise<void>;
}
