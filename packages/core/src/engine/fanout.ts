import { NotifyFailedError, serializeError } from '../errors.js';
import type { ReleaseEvent } from '../events/types.js';
import type { Logger } from '../logger.js';
import type { Notifier } from '../notify/types.js';
import type { Redactor } from '../util/redact.js';
import { type RetryOptions, retryDefaults } from '../util/retry.js';
import { type AbandonedCall, PluginCalls } from './plugin-call.js';

/** How the engine delivers events to notifiers. */
export interface DeliveryOptions {
  /**
   * Longest time one delivery (with its retries) may take, in milliseconds. The engine stops waiting
   * then, whether or not the notifier honours its signal. @default 10_000
   */
  timeoutMs?: number;
  /** Retries of a retryable delivery failure. @default { retries: 2, minTimeoutMs: 200, maxTimeoutMs: 2000 } */
  retry?: RetryOptions;
}

/**
 * The defaults of {@link DeliveryOptions}.
 *
 * @example
 * ```ts
 * createReleaseEngine({ ..., delivery: { ...deliveryDefaults, timeoutMs: 3_000 } })
 * ```
 */
export const deliveryDefaults = Object.freeze({ timeoutMs: 10_000, retry: retryDefaults });

/**
 * Delivers events to every notifier in isolation: deliveries run in the background, each raced against
 * its deadline through the engine's plugin wrapper; a failure is retried, then reported through
 * `onFailure`, and never thrown to the run. Nothing here holds a run's lock.
 */
export class Fanout {
  readonly #pending = new Set<Promise<void>>();

  constructor(
    private readonly notifiers: readonly Notifier[],
    private readonly options: DeliveryOptions,
    private readonly logger: Logger,
    private readonly redactor: Redactor,
    private readonly onFailure: (notifier: Notifier, event: ReleaseEvent, error: NotifyFailedError) => void,
    private readonly onAbandoned: (call: AbandonedCall, event: ReleaseEvent) => void,
  ) {}

  publish(event: ReleaseEvent): void {
    // Reports about deliveries are never themselves delivered to notifiers: a broken destination must not loop.
    if (event.type === 'notification.failed') return;
    if (event.type === 'plugin.abandoned' && event.pluginKind === 'notifier') return;
    for (const notifier of this.notifiers) {
      if (notifier.events && !notifier.events.includes(event.type)) continue;
      // Measurements are many (one per check a second): only notifiers that list them get them.
      if (event.type === 'analysis.measured' && !notifier.events?.includes(event.type)) continue;
      const p = this.#deliver(notifier, event).finally(() => this.#pending.delete(p));
      this.#pending.add(p);
    }
  }

  async #deliver(notifier: Notifier, event: ReleaseEvent): Promise<void> {
    const timeoutMs = this.options.timeoutMs ?? deliveryDefaults.timeoutMs;
    const calls = new PluginCalls({}, this.logger, (call) => this.onAbandoned(call, event));
    try {
      await calls.call(
        {
          kind: 'notifier',
          plugin: notifier.name,
          method: 'notify',
          phase: 'notify',
          deadlineMs: timeoutMs,
          retry: this.options.retry ?? deliveryDefaults.retry,
        },
        (ctx) => notifier.notify(event, ctx),
      );
    } catch (err) {
      const timedOut = (err as { code?: unknown } | null)?.code === 'CG_TIMEOUT';
      const message = this.redactor.string(err instanceof Error ? err.message : String(err));
      const error = new NotifyFailedError(
        `notifier ${notifier.name} could not deliver ${event.type}: ${timedOut ? `timed out after ${timeoutMs} ms` : message}`,
        {
          plugin: notifier.name,
          phase: 'notify',
          details: { cause: this.redactor.value(serializeError(err)) },
        },
      );
      this.onFailure(notifier, event, error);
    }
  }

  /**
   * Waits for deliveries in flight, at most `ms` milliseconds (each delivery is bounded by its own
   * deadline too). Resolves when nothing is pending or the bound passed.
   */
  async drain(ms: number): Promise<void> {
    const until = performance.now() + ms;
    while (this.#pending.size > 0) {
      const left = until - performance.now();
      if (left <= 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.#pending]),
        new Promise((r) => {
          timer = setTimeout(r, left);
        }),
      ]);
      clearTimeout(timer);
    }
  }
}
