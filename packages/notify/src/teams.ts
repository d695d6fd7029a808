import type { Notifier } from '@codegraph/release-core';
import { escapeMarkdown } from '@codegraph/release-core/kit';
import type { Notice } from './templates.js';
import { chatWebhook, type DestinationOptions } from './utils/destination.js';
import { truncate } from './utils/text.js';

/** Limits we keep Teams messages within. */
export const teamsLimits = {
  /** Teams rejects messages above about 28 KB (HTTP 413); we stay below with headroom. */
  messageBytes: 27 * 1024,
  /** Adaptive Card schema version Teams renders. */
  cardVersion: '1.4',
} as const;

/**
 * Options of {@link teams}.
 *
 * @example
 * ```ts
 * const options: TeamsOptions = { webhookUrl: process.env.TEAMS_WORKFLOW_URL!, minSeverity: 'P1' }
 * ```
 */
export interface TeamsOptions extends DestinationOptions {
  /**
   * The URL of a Teams Workflows "When a Teams webhook request is received" trigger
   * (`https://….logic.azure.com/workflows/…?…&sig=…` or `https://….powerautomate.com/…`). Its query
   * holds the signature (the secret): it never appears in logs or errors.
   */
  webhookUrl: string;
}

/**
 * Posts release notices to a Microsoft Teams channel through a Workflows webhook, as an Adaptive Card
 * attachment of a `message`.
 *
 * @example
 * ```ts
 * import { teams } from '@codegraph/notify'
 * const notifier = teams({ webhookUrl: process.env.TEAMS_WORKFLOW_URL!, notices: ['release.rolled-back', 'incident.opened', 'incident.resolved'] })
 * ```
 */
export function teams(options: TeamsOptions): Notifier {
  return chatWebhook('teams', options, 250, teamsMessage);
}

const colors = { info: 'Default', success: 'Good', warning: 'Warning', critical: 'Attention' } as const;

/** The Workflows webhook payload of a notice: a message with one Adaptive Card attachment. */
export function teamsMessage(
  notice: Notice,
  maxBytes: number = teamsLimits.messageBytes,
): Record<string, unknown> {
  // Shrink long texts until the whole message fits the size limit.
  for (let max = 4000; ; max = Math.floor(max / 2)) {
    const message = build(notice, max);
    if (Buffer.byteLength(JSON.stringify(message)) <= maxBytes || max < 64) return message;
  }
}

/** Teams renders Markdown in TextBlocks and facts: text from a run is escaped so it stays text. */
const md = (text: string) => escapeMarkdown(text, { html: false });

function build(notice: Notice, max: number): Record<string, unknown> {
  const body: Array<Record<string, unknown>> = [
    {
      type: 'TextBlock',
      text: truncate(md(notice.title), 256),
      weight: 'Bolder',
      size: 'Medium',
      color: colors[notice.tone],
      wrap: true,
    },
  ];
  if (notice.text) body.push({ type: 'TextBlock', text: truncate(md(notice.text), max), wrap: true });
  if (notice.fields.length > 0) {
    body.push({
      type: 'FactSet',
      facts: notice.fields
        .slice(0, 30)
        .map((f) => ({ title: truncate(md(f.label), 100), value: truncate(md(f.value), max) })),
    });
  }
  if (notice.list && notice.list.items.length > 0) {
    body.push({ type: 'TextBlock', text: `**${md(notice.list.title)}:**`, wrap: true, spacing: 'Medium' });
    const items = notice.list.items
      .slice(0, 50)
      .map((item) => `- ${truncate(md(item), Math.max(64, max / 4))}`);
    body.push({ type: 'TextBlock', text: truncate(items.join('\n'), max), wrap: true });
  }
  if (notice.footer) body.push({ type: 'TextBlock', text: truncate(md(notice.footer), max), wrap: true });
  body.push({
    type: 'TextBlock',
    text: md(`${notice.severity} · ${notice.environment} · run ${notice.runId} · ${notice.time}`),
    isSubtle: true,
    size: 'Small',
    wrap: true,
  });
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: teamsLimits.cardVersion,
          body,
        },
      },
    ],
  };
}
