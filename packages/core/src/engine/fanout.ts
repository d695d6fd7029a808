import { NotifyFailedError, serializeError } from '../errors.js';
import type { ReleaseEvent } from '../events/types.js';
import type { Logger } from '../logger.js';
import type { Notifier } from '../notify/types.js';
import type { Redactor } from '../util/redact.js';
import { type RetryOptions, withRetry } from '../util/retry.js';

/** How the engine delivers events to notifiers. */
export interface DeliveryOptions {
  /** Longest time one delivery (with its retries) may take. @default 10_000 */
  timeoutMs?: number;
  /** Retries of a retryable delivery failure. @default { retries: 2, minTimeoutMs: 200, maxTimeoutMs: 2000 } */
  retry?: RetryOptions;
}

/**
 * Delivers events to every notifier in isolation: deliveries run in the background, each bounded by
 * a timeout; a failure is retried, then reported through `onFailure`, and never thrown to the run.
 */
export class Fanout {
  readonly #pending = new Set<Promise<void>>();
  constructor(
    private readonly notifiers: readonly Notifier[],
    private readonly options: DeliveryOptions,
    private readonly logger: Logger,
    private readonly redactor: Redactor,
    private readonly onFailure: (notifier: Notifier, event: ReleaseEvent, error: NotifyFailedError) => void,
  ) {}

  publish(event: ReleaseEvent): void {
    // A failure report is never itself delivered to notifiers: a broken destination must not loop.
    if (event.type === 'notification.failed') return;
    for (const notifier of this.notifiers) {
      if (notifier.events && !notifier.events.includes(event.type)) continue;
      // Measurements are many (one per check a second): only notifiers that list them get them.
      if (event.type === 'analysis.measured' && !notifier.events?.includes(event.type)) continue;
      const p = this.#deliver(notifier, event).finally(() => this.#pending.delete(p));
      this.#pending.add(p);
    }
  }

  async #deliver(notifier: Notifier, event: ReleaseEvent): Promise<void> {
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      await withRetry(
        () => notifier.notify(event, { signal, logger: this.logger }),
        this.options.retry,
        signal,
      );
    } catch (err) {
      const message = this.redactor.string(err instanceof Error ? err.message : String(err));
      const error = new NotifyFailedError(
        `notifier ${notifier.name} could not deliver ${event.type}: ${signal.aborted ? `timed out after ${timeoutMs} ms` : message}`,
        {
          plugin: notifier.name,
          phase: 'notify',
          details: { cause: this.redactor.value(serializeError(err)) },
        },
      );
      this.onFailure(notifier, event, error);
    }
  }

  /** Waits for deliveries in flight (each is already bounded by its timeout). */
  async drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }
}
