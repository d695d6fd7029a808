import {
  AbortedError,
  ConfigInvalidError,
  type Logger,
  type Notifier,
  NotifyFailedError,
  type OperationContext,
  ReleaseError,
  type ReleaseEvent,
  type ReleaseEventType,
  type Severity,
  silentLogger,
} from '@codegraph/release-core';
import { createRedactor } from '@codegraph/release-core/kit';
import type { Dispatcher } from 'undici';
import {
  type Notice,
  type NoticeKind,
  noticeKinds,
  type RunbookWording,
  renderNotice,
  type Templates,
} from '../templates.js';
import { type DeliveryPolicy, type PostRequest, type PostResult, post, sanitize } from './http.js';
import { dedupWindow, deliveryQueue } from './queue.js';
import { describeUrl, type Redact, urlSecrets } from './redact.js';

/**
 * Options every destination accepts: routing, templates, dedup and delivery.
 *
 * @example
 * ```ts
 * const routing: DestinationOptions = { minSeverity: 'P2', dedupWindowMs: 60_000, deliveryTimeoutMs: 5_000 }
 * ```
 */
export interface DestinationOptions extends RunbookWording {
  /** The notifier's name in logs, errors and `notification.failed` events. @default the system's name, e.g. `'slack'` */
  name?: string;
  /** Event types the engine should hand to this notifier. @default every type */
  events?: ReadonlyArray<ReleaseEventType>;
  /** Notice kinds to send. @default every kind (`weight.changed` still needs `weightChanges`) */
  notices?: ReadonlyArray<NoticeKind>;
  /** Lowest runbook severity to send: `'P1'` sends P0 and P1 only. @default 'P3' (PagerDuty: 'P1') */
  minSeverity?: Severity;
  /** Announce traffic weight changes (one message per step). @default false */
  weightChanges?: boolean;
  /** Per-event-type template overrides. @default {} */
  templates?: Templates;
  /** A notice repeated within this window (same kind, run, title and text) is sent once. `0` disables. @default 300_000 */
  dedupWindowMs?: number;
  /** Time limit of one HTTP attempt (headers and body). @default 5_000 */
  timeoutMs?: number;
  /** Retries after the first attempt, for network errors, timeouts, 5xx and 429. @default 3 */
  retries?: number;
  /** Budget of one `notify()` call, queueing, retries and Retry-After waits included. @default 10_000 */
  deliveryTimeoutMs?: number;
  /** Least time between two requests to this destination. @default per system: Slack 1_000, Discord 500, Teams 250, others 0 */
  minIntervalMs?: number;
  /** Longest Retry-After honoured; a longer one is capped. @default 30_000 */
  maxRetryAfterMs?: number;
  /** First backoff after a failed attempt (doubles each time, up to 5 s). @default 250 */
  minBackoffMs?: number;
  /** Diagnostics; the engine's `ctx.logger` wins when given. Secrets are redacted. @default silentLogger */
  logger?: Logger;
  /** undici dispatcher (proxy, custom TLS). @default undici's global dispatcher */
  dispatcher?: Dispatcher;
}

/** Sends one request to the destination with its policy, pace and redaction. */
export type Send = (req: Omit<PostRequest, 'url'> & { url?: URL }) => Promise<PostResult>;

/** What a destination file tells the shared runner. */
export interface DestinationSpec {
  system: string;
  options: DestinationOptions;
  url?: URL | undefined;
  /** Shown instead of the URL, e.g. `https://hooks.slack.com/[redacted]`. */
  target: string;
  secrets: ReadonlyArray<string | undefined>;
  defaults: { minIntervalMs: number; minSeverity?: Severity };
  /** Overrides the notices/minSeverity filter (PagerDuty resolves on notices it would not page for). */
  accept?: (notice: Notice, defaultAccept: boolean) => boolean;
  /** Sends the notice; resolves `false` when there was nothing to send (e.g. no alert to resolve). */
  deliver(
    notice: Notice,
    event: ReleaseEvent,
    send: Send,
    signal: AbortSignal,
  ): Promise<boolean | undefined | void>;
}

/** The runner's result: the Notifier's members. */
export interface Destination {
  name: string;
  events: ReadonlyArray<ReleaseEventType> | undefined;
  /** The credentials this destination holds, for the engine's redactor. */
  secrets: string[];
  redact: Redact;
  notify(event: ReleaseEvent, ctx?: OperationContext): Promise<void>;
  close(): Promise<void>;
}

const severityRank: Record<Severity, number> = { P0: 0, P1: 1, P2: 2, P3: 3 };

/** Rejects a non-finite or negative number option before anything is sent. */
export function checkNumbers(system: string, options: object): void {
  for (const [key, value] of Object.entries(options)) {
    if (!/(Ms|retries)$/.test(key) || value === undefined) continue;
    // A zero time limit would mean "no limit" to undici or "already expired" to AbortSignal.timeout.
    const min = /^(timeoutMs|deliveryTimeoutMs)$/.test(key) ? 1 : 0;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
      throw new ConfigInvalidError(
        `${system}: option ${key} must be a finite number ≥ ${min}, got ${String(value)}`,
        {
          plugin: system,
        },
      );
    }
  }
}

/** Parses a webhook URL, failing with a typed error that does not echo the URL (its path is the secret). */
export function parseWebhookUrl(system: string, option: string, value: unknown): URL {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ConfigInvalidError(`${system}: ${option} is required (the webhook URL the service gave you)`, {
      plugin: system,
    });
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigInvalidError(
      `${system}: ${option} is not a valid URL (value not shown: it is a secret)`,
      {
        plugin: system,
      },
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigInvalidError(`${system}: ${option} must be an http(s) URL, got ${url.protocol}`, {
      plugin: system,
    });
  }
  return url;
}

/**
 * The shared delivery line of every destination: render, route, dedup, queue with pacing, deliver
 * within the budget, redact, and report failures as {@link NotifyFailedError}.
 */
export function destination(spec: DestinationSpec): Destination {
  const o = spec.options;
  checkNumbers(spec.system, o);
  const name = o.name ?? spec.system;
  const secrets = spec.secrets.filter((x): x is string => typeof x === 'string' && x.length >= 4);
  const redactor = createRedactor(secrets);
  const redact: Redact = (text) => redactor.string(text);
  const kinds = new Set<NoticeKind>(o.notices ?? noticeKinds);
  for (const kind of kinds) {
    if (!noticeKinds.includes(kind)) {
      throw new ConfigInvalidError(`${name}: unknown notice kind ${JSON.stringify(kind)}`, { plugin: name });
    }
  }
  const minSeverity = o.minSeverity ?? spec.defaults.minSeverity ?? 'P3';
  if (!(minSeverity in severityRank)) {
    throw new ConfigInvalidError(`${name}: minSeverity must be one of P0, P1, P2, P3`, { plugin: name });
  }
  const policy: DeliveryPolicy = {
    timeoutMs: o.timeoutMs ?? 5_000,
    retries: o.retries ?? 3,
    minBackoffMs: o.minBackoffMs ?? 250,
    maxBackoffMs: 5_000,
    maxRetryAfterMs: o.maxRetryAfterMs ?? 30_000,
  };
  const budgetMs = o.deliveryTimeoutMs ?? 10_000;
  const queue = deliveryQueue(o.minIntervalMs ?? spec.defaults.minIntervalMs);
  const dedup = dedupWindow(o.dedupWindowMs ?? 300_000);
  const pending = new Set<Promise<unknown>>();

  const notify = async (event: ReleaseEvent, ctx: OperationContext = {}): Promise<void> => {
    const logger = ctx.logger ?? o.logger ?? silentLogger;
    if (ctx.signal?.aborted) throw new AbortedError(`${name}: notify was cancelled`, { plugin: name });
    let notice: Notice | null;
    try {
      notice = renderNotice(event, o);
    } catch (err) {
      throw new NotifyFailedError(
        `${name}: the template for ${event.type} threw: ${redact(messageOf(err))}`,
        {
          plugin: name,
          retryable: false,
          cause: sanitize(err, redact),
        },
      );
    }
    if (!notice) return;
    const defaultAccept =
      kinds.has(notice.kind) && severityRank[notice.severity] <= severityRank[minSeverity];
    if (!(spec.accept ? spec.accept(notice, defaultAccept) : defaultAccept)) return;
    const key = [notice.kind, notice.environment, notice.runId, notice.title, notice.text].join('\u0000');
    if (dedup.seen(key)) {
      logger.debug(
        `${name}: dropped a repeat of ${notice.kind} for run ${notice.runId} within the dedup window`,
      );
      return;
    }
    const budget = AbortSignal.timeout(budgetMs);
    const deadline = performance.now() + budgetMs;
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, budget]) : budget;
    const send: Send = (req) =>
      post(
        { ...req, url: req.url ?? (spec.url as URL) },
        {
          plugin: name,
          target: spec.target,
          redact,
          policy,
          signal,
          logger,
          dispatcher: o.dispatcher,
          pace: queue.pace,
          settled: queue.settled,
          deadline,
        },
      );
    const task = queue.run(() => spec.deliver(notice, event, send, signal), signal);
    pending.add(task);
    try {
      const sent = await task;
      if (sent !== false)
        logger.debug(`${name}: delivered ${notice.kind} (${notice.severity}) to ${spec.target}`);
    } catch (err) {
      dedup.forget(key);
      const error = toReleaseError(err, name, spec.target, event, signal, budget, budgetMs, redact);
      logger.warn(redact(error.message), { notifier: name, eventType: event.type, code: error.code });
      throw error;
    } finally {
      pending.delete(task);
    }
  };

  return {
    name,
    events: o.events,
    secrets,
    redact,
    notify,
    async close() {
      await Promise.allSettled(pending);
      await queue.idle();
    },
  };
}

function toReleaseError(
  err: unknown,
  name: string,
  target: string,
  event: ReleaseEvent,
  signal: AbortSignal,
  budget: AbortSignal,
  budgetMs: number,
  redact: Redact,
): ReleaseError {
  if (err instanceof ReleaseError && (err.code === 'CG_NOTIFY_FAILED' || err.code === 'CG_ABORTED'))
    return err;
  if (signal.aborted && !budget.aborted) {
    return new AbortedError(`${name}: delivery of ${event.type} was cancelled`, { plugin: name });
  }
  if (budget.aborted) {
    return new NotifyFailedError(
      `${name}: gave up delivering ${event.type} to ${target} within the ${budgetMs} ms delivery budget`,
      { plugin: name, retryable: false, details: { budgetMs } },
    );
  }
  return new NotifyFailedError(`${name}: delivering ${event.type} failed: ${redact(messageOf(err))}`, {
    plugin: name,
    retryable: false,
    cause: err instanceof ReleaseError ? err : sanitize(err, redact),
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The {@link Notifier} face of a destination. */
export function asNotifier(d: Destination): Notifier {
  return {
    name: d.name,
    ...(d.events ? { events: d.events } : {}),
    secrets: d.secrets,
    notify: d.notify,
    close: d.close,
  };
}

/**
 * A chat webhook (Slack, Teams, Discord): the URL's path and query are the secret, and each notice is
 * posted as one JSON body, spaced by `minIntervalMs` per webhook unless the options say otherwise.
 */
export function chatWebhook(
  system: string,
  options: DestinationOptions & { webhookUrl: string },
  minIntervalMs: number,
  render: (notice: Notice) => unknown,
): Notifier {
  const url = parseWebhookUrl(system, 'webhookUrl', options.webhookUrl);
  return asNotifier(
    destination({
      system,
      options,
      url,
      target: describeUrl(url),
      secrets: urlSecrets(url),
      defaults: { minIntervalMs },
      async deliver(notice, _event, send) {
        await send({ body: JSON.stringify(render(notice)) });
      },
    }),
  );
}
