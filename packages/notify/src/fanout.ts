import {
  type Logger,
  type Notifier,
  NotifyFailedError,
  type OperationContext,
  ReleaseError,
  type ReleaseEvent,
  type ReleaseEventType,
  serializeError,
  silentLogger,
} from '@codegraph/release-core';
import { checkNumbers } from './utils/destination.js';
import { deliveryQueue } from './utils/queue.js';

/**
 * What {@link FanOutOptions.onError} receives.
 *
 * @example
 * ```ts
 * const onError = ({ notifier, event, error }: FanOutFailure) =>
 *   console.warn(`${notifier} missed ${event.type}: ${error.code}`)
 * ```
 */
export interface FanOutFailure {
  /** The failing notifier's name. */
  notifier: string;
  event: ReleaseEvent;
  /** Always a {@link ReleaseError}: the notifier's own, or a `CG_NOTIFY_FAILED` wrapping what it threw. */
  error: ReleaseError;
}

/**
 * Options of {@link fanOut}.
 *
 * @example
 * ```ts
 * const options: FanOutOptions = { deliveryTimeoutMs: 5_000, onError: ({ notifier }) => failures.inc({ notifier }) }
 * ```
 */
export interface FanOutOptions {
  /** The combined notifier's name. @default 'fan-out' */
  name?: string;
  /**
   * Longest time one `notify()` waits for all destinations, queueing included. Each destination gets
   * an AbortSignal that fires at the deadline; one that ignores it is reported and left behind.
   * @default 10_000
   */
  deliveryTimeoutMs?: number;
  /**
   * Called once per failed destination. With it, `notify()` never throws for a destination's failure;
   * without it, `notify()` throws one {@link NotifyFailedError} naming every failed destination.
   * @default undefined
   */
  onError?: (failure: FanOutFailure) => void;
  /** Diagnostics. @default silentLogger (or the engine's `ctx.logger`) */
  logger?: Logger;
}

/**
 * One Notifier that hands each event to many, in isolation: each destination has its own queue (a slow
 * one never delays the others, and its own messages keep their order), the whole delivery is bounded by
 * `deliveryTimeoutMs`, and failures go to `onError` instead of failing the release.
 *
 * @example
 * ```ts
 * import { fanOut, slack, pagerDuty } from '@codegraph/notify'
 * const notifier = fanOut([slack({ webhookUrl }), pagerDuty({ routingKey })], {
 *   onError: ({ notifier, error }) => metrics.notifyFailures.inc({ notifier, code: error.code }),
 * })
 * ```
 */
export function fanOut(notifiers: ReadonlyArray<Notifier>, options: FanOutOptions = {}): Notifier {
  checkNumbers('fan-out', options);
  const name = options.name ?? 'fan-out';
  const budgetMs = options.deliveryTimeoutMs ?? 10_000;
  const lanes = notifiers.map((notifier) => ({ notifier, queue: deliveryQueue(0) }));
  const pending = new Set<Promise<unknown>>();
  const events = union(notifiers);

  const notify = async (event: ReleaseEvent, ctx: OperationContext = {}): Promise<void> => {
    const logger = ctx.logger ?? options.logger ?? silentLogger;
    const budget = AbortSignal.timeout(budgetMs);
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, budget]) : budget;
    const failures: FanOutFailure[] = [];
    const targets = lanes.filter((l) => !l.notifier.events || l.notifier.events.includes(event.type));
    const settled = targets.map(async ({ notifier, queue }) => {
      const task = queue.run(() => notifier.notify(event, { ...ctx, signal, logger }), signal);
      pending.add(task);
      task.then(
        () => pending.delete(task),
        () => pending.delete(task),
      );
      try {
        await race(task, signal);
      } catch (err) {
        failures.push({
          notifier: notifier.name,
          event,
          error: asNotifyError(err, notifier.name, budget, budgetMs),
        });
      }
    });
    await Promise.all(settled);
    for (const failure of failures) {
      logger.warn(`${name}: ${failure.error.message}`, {
        notifier: failure.notifier,
        code: failure.error.code,
      });
      try {
        options.onError?.(failure);
      } catch (err) {
        logger.error(`${name}: onError threw`, { error: serializeError(err).message });
      }
    }
    if (failures.length > 0 && !options.onError) {
      throw new NotifyFailedError(
        `${name}: ${failures.length} of ${targets.length} notifier(s) failed: ${failures.map((f) => `${f.notifier} (${f.error.code})`).join(', ')}`,
        {
          plugin: name,
          retryable: false,
          cause: failures[0]?.error,
          details: { failed: failures.map((f) => f.notifier) },
        },
      );
    }
  };

  return {
    name,
    ...(events ? { events } : {}),
    secrets: notifiers.flatMap((n) => n.secrets ?? []),
    notify,
    async close() {
      // Bounded like a delivery: a notifier that never settles is not waited for past the budget.
      const deadline = AbortSignal.timeout(budgetMs);
      const all = Promise.allSettled([...pending, ...notifiers.map((n) => n.close?.())]);
      await race(all, deadline).catch(() => undefined);
    },
  } satisfies Notifier;
}

function union(notifiers: ReadonlyArray<Notifier>): ReleaseEventType[] | undefined {
  if (notifiers.some((n) => !n.events)) return undefined;
  return [...new Set(notifiers.flatMap((n) => n.events ?? []))];
}

/** Settles with the task, or rejects when the signal fires first (a notifier that ignores its signal). */
function race<T>(task: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    task.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function asNotifyError(err: unknown, notifier: string, budget: AbortSignal, budgetMs: number): ReleaseError {
  if (err instanceof ReleaseError) return err;
  if (budget.aborted) {
    return new NotifyFailedError(`${notifier}: did not finish within the ${budgetMs} ms delivery budget`, {
      plugin: notifier,
      retryable: false,
    });
  }
  return new NotifyFailedError(`${notifier}: ${err instanceof Error ? err.message : String(err)}`, {
    plugin: notifier,
    retryable: false,
    cause: err,
  });
}
