import type { Notifier } from '@codegraph/release-core';
import { type Notice, noticeText } from './templates.js';
import { chatWebhook, type DestinationOptions } from './utils/destination.js';
import { fitEncoded, truncate } from './utils/text.js';

/** Slack's documented Block Kit limits. */
export const slackLimits = {
  blocks: 50,
  headerText: 150,
  sectionText: 3000,
  sectionFields: 10,
  fieldText: 2000,
  contextElements: 10,
  /** The top-level `text` (notification fallback) is truncated by Slack beyond this. */
  text: 40_000,
} as const;

/**
 * Options of {@link slack}.
 *
 * @example
 * ```ts
 * const options: SlackOptions = { webhookUrl: process.env.SLACK_WEBHOOK_URL!, notices: ['release.promoted', 'release.rolled-back'] }
 * ```
 */
export interface SlackOptions extends DestinationOptions {
  /**
   * The incoming webhook URL (`https://hooks.slack.com/services/T…/B…/…`). Its path is the secret:
   * it never appears in logs or errors.
   */
  webhookUrl: string;
}

/**
 * Posts release notices to a Slack channel through an incoming webhook, as Block Kit messages within
 * Slack's limits. Requests to one webhook are spaced by Slack's documented one message per second.
 *
 * @example
 * ```ts
 * import { slack } from '@codegraph/notify'
 * const notifier = slack({ webhookUrl: process.env.SLACK_WEBHOOK_URL!, minSeverity: 'P2' })
 * ```
 */
export function slack(options: SlackOptions): Notifier {
  return chatWebhook('slack', options, 1_000, slackMessage);
}

/** Slack's mrkdwn needs `&`, `<` and `>` escaped; everything else is literal. */
function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

type Block = Record<string, unknown>;

/** The Block Kit payload of a notice. */
export function slackMessage(notice: Notice): { text: string; blocks: Block[] } {
  const mrkdwn = (raw: string, max: number) => ({ type: 'mrkdwn', text: fitEncoded(raw, max, escapeMrkdwn) });
  const blocks: Block[] = [
    {
      type: 'header',
      text: { type: 'plain_text', text: truncate(notice.title, slackLimits.headerText), emoji: true },
    },
  ];
  if (notice.text) blocks.push({ type: 'section', text: mrkdwn(notice.text, slackLimits.sectionText) });
  for (
    let i = 0;
    i < notice.fields.length && blocks.length < slackLimits.blocks - 3;
    i += slackLimits.sectionFields
  ) {
    const fields = notice.fields
      .slice(i, i + slackLimits.sectionFields)
      .map((f) => mrkdwn(`*${f.label}:*\n${f.value}`, slackLimits.fieldText));
    blocks.push({ type: 'section', fields });
  }
  if (notice.list && notice.list.items.length > 0) {
    const list = `*${notice.list.title}:*\n${notice.list.items.map((item) => `• ${item}`).join('\n')}`;
    blocks.push({ type: 'section', text: mrkdwn(list, slackLimits.sectionText) });
  }
  if (notice.footer) blocks.push({ type: 'section', text: mrkdwn(notice.footer, slackLimits.sectionText) });
  blocks.push({
    type: 'context',
    elements: [
      mrkdwn(`${notice.severity} · ${notice.environment} · run ${notice.runId} · ${notice.time}`, 3000),
    ],
  });
  return {
    text: fitEncoded(noticeText(notice), slackLimits.text, escapeMrkdwn),
    blocks: blocks.slice(0, slackLimits.blocks),
  };
}
