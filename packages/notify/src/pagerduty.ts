import { ConfigInvalidError, type Notifier, type Severity } from '@codegraph/release-core';
import type { Notice, NoticeKind } from './templates.js';
import {
  asNotifier,
  type DestinationOptions,
  destination,
  parseWebhookUrl,
  type Send,
} from './utils/destination.js';
import { describeUrl, urlSecrets } from './utils/redact.js';
import { truncate } from './utils/text.js';

/** PagerDuty Events API v2 limits. */
export const pagerDutyLimits = { summary: 1024, dedupKey: 255 } as const;

/**
 * PagerDuty's event severities.
 *
 * @example
 * ```ts
 * const severities: Partial<Record<Severity, PagerDutySeverity>> = { P1: 'critical' }
 * ```
 */
export type PagerDutySeverity = 'critical' | 'error' | 'warning' | 'info';

/**
 * Options of {@link pagerDuty}.
 *
 * @example
 * ```ts
 * const options: PagerDutyOptions = { routingKey: process.env.PAGERDUTY_ROUTING_KEY!, source: 'codegraph-api.prod' }
 * ```
 */
export interface PagerDutyOptions extends DestinationOptions {
  /** The 32-character integration key of an Events API v2 integration. A secret: never logged. */
  routingKey: string;
  /** The Events API v2 endpoint. @default 'https://events.pagerduty.com/v2/enqueue' */
  url?: string;
  /** `payload.source`: the affected system. @default 'codegraph-<environment>' */
  source?: string;
  /** `payload.component`. @default 'codegraph-api' */
  component?: string;
  /** Runbook severity to PagerDuty severity. @default { P0: 'critical', P1: 'error', P2: 'warning', P3: 'info' } */
  severities?: Partial<Record<Severity, PagerDutySeverity>>;
}

const defaultSeverities: Record<Severity, PagerDutySeverity> = {
  P0: 'critical',
  P1: 'error',
  P2: 'warning',
  P3: 'info',
};

/** Notices that mean "recovered": they resolve the environment's open alerts. */
const recoveries: ReadonlySet<NoticeKind> = new Set(['incident.resolved', 'release.promoted']);

/**
 * Pages through PagerDuty Events API v2. A failed release, a rollback and an emergency rollback trigger
 * an alert whose `dedup_key` is one per run (`codegraph/<environment>/<runId>`), so repeats update one
 * alert; a successful emergency rollback or a later successful release resolves the environment's
 * open alerts. Pages P0 and P1 by default (`minSeverity: 'P1'`).
 *
 * @example
 * ```ts
 * import { pagerDuty } from '@codegraph/notify'
 * const notifier = pagerDuty({ routingKey: process.env.PAGERDUTY_ROUTING_KEY!, source: 'codegraph-api.prod' })
 * ```
 */
export function pagerDuty(options: PagerDutyOptions): Notifier {
  const { routingKey } = options;
  if (typeof routingKey !== 'string' || !/^[A-Za-z0-9]{32}$/.test(routingKey)) {
    throw new ConfigInvalidError(
      'pagerduty: routingKey must be the 32-character integration key of an Events API v2 integration (value not shown)',
      { plugin: 'pagerduty' },
    );
  }
  const url = parseWebhookUrl('pagerduty', 'url', options.url ?? 'https://events.pagerduty.com/v2/enqueue');
  const severities = { ...defaultSeverities, ...options.severities };
  /** dedup keys of alerts triggered and not yet resolved, per environment. */
  const open = new Map<string, Set<string>>();

  const d = destination({
    system: 'pagerduty',
    options,
    url,
    target: describeUrl(url),
    // A custom URL (a proxy) may carry credentials in its path or query.
    secrets: [routingKey, ...urlSecrets(url)],
    defaults: { minIntervalMs: 0, minSeverity: 'P1' },
    accept: (notice, defaultAccept) => recoveries.has(notice.kind) || defaultAccept,
    async deliver(notice, _event, send) {
      const key = dedupKey(notice);
      const keys = open.get(notice.environment) ?? new Set<string>();
      if (recoveries.has(notice.kind)) {
        if (notice.kind === 'incident.resolved') keys.add(key);
        const sent = keys.size;
        for (const k of keys) {
          await post(send, { routing_key: routingKey, event_action: 'resolve', dedup_key: k });
          keys.delete(k);
        }
        return sent > 0;
      }
      await post(send, {
        routing_key: routingKey,
        event_action: 'trigger',
        dedup_key: key,
        client: 'CodeGraph Release SDK',
        payload: {
          summary: truncate(notice.title, pagerDutyLimits.summary),
          source: options.source ?? `codegraph-${notice.environment}`,
          severity: severities[notice.severity],
          timestamp: notice.time,
          component: options.component ?? 'codegraph-api',
          group: notice.environment,
          class: notice.kind,
          custom_details: {
            severity: notice.severity,
            text: notice.text,
            run: notice.runId,
            ...Object.fromEntries(notice.fields.map((f) => [f.label, f.value])),
            ...(notice.list ? { [notice.list.title]: notice.list.items } : {}),
            ...(notice.footer ? { footer: notice.footer } : {}),
          },
        },
      });
      keys.add(key);
      open.set(notice.environment, keys);
      return true;
    },
  });
  return asNotifier(d);
}

/** One alert per run: repeats of the run's notices update the same alert. */
export function dedupKey(notice: Pick<Notice, 'environment' | 'runId'>): string {
  return `codegraph/${notice.environment}/${notice.runId}`.slice(0, pagerDutyLimits.dedupKey);
}

async function post(send: Send, event: Record<string, unknown>): Promise<void> {
  await send({ body: JSON.stringify(event) });
}
