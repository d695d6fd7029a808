import type { Notifier } from '@codegraph/release-core';
import { escapeMarkdown } from '@codegraph/release-core/kit';
import type { Notice } from './templates.js';
import { chatWebhook, type DestinationOptions } from './utils/destination.js';
import { truncate } from './utils/text.js';

/** Discord's documented message and embed limits. */
export const discordLimits = {
  content: 2000,
  embeds: 10,
  title: 256,
  description: 4096,
  fields: 25,
  fieldName: 256,
  fieldValue: 1024,
  footer: 2048,
  username: 80,
  /** Sum of title, description, field names and values, footer and author name across all embeds. */
  total: 6000,
} as const;

/**
 * Options of {@link discord}.
 *
 * @example
 * ```ts
 * const options: DiscordOptions = { webhookUrl: process.env.DISCORD_WEBHOOK_URL!, username: 'Release bot' }
 * ```
 */
export interface DiscordOptions extends DestinationOptions {
  /** The webhook URL (`https://discord.com/api/webhooks/<id>/<token>`). Its token is a secret. */
  webhookUrl: string;
  /** The name the message is posted under. @default 'CodeGraph Release' */
  username?: string;
}

/**
 * Posts release notices to a Discord channel through a webhook, as one embed within Discord's limits.
 * Mentions in texts are never parsed (`allowed_mentions: { parse: [] }`), so a version string cannot ping
 * `@everyone`.
 *
 * @example
 * ```ts
 * import { discord } from '@codegraph/notify'
 * const notifier = discord({ webhookUrl: process.env.DISCORD_WEBHOOK_URL! })
 * ```
 */
export function discord(options: DiscordOptions): Notifier {
  const username = truncate(options.username ?? 'CodeGraph Release', discordLimits.username);
  return chatWebhook('discord', options, 500, (notice: Notice) => discordMessage(notice, username));
}

const colors = { info: 0x5865f2, success: 0x2eb67d, warning: 0xecb22e, critical: 0xe01e5a } as const;

/** The execute-webhook payload of a notice. */
export function discordMessage(notice: Notice, username = 'CodeGraph Release'): Record<string, unknown> {
  const L = discordLimits;
  let budget = L.total;
  // Discord renders Markdown in content, titles, descriptions and field values: run text stays text.
  const md = (text: string) => escapeMarkdown(text, { html: false });
  const take = (text: string, max: number, escaped = false) => {
    const out = truncate(escaped ? text : md(text), Math.min(max, budget));
    budget -= out.length;
    return out;
  };
  const title = take(notice.title, L.title);
  const footer = take(`${notice.severity} · ${notice.environment} · run ${notice.runId}`, L.footer);
  const fields: Array<{ name: string; value: string; inline: boolean }> = [];
  for (const f of notice.fields.slice(0, L.fields - 1)) {
    if (budget < 16) break;
    fields.push({
      name: take(f.label, L.fieldName),
      value: take(f.value, L.fieldValue) || '-',
      inline: true,
    });
  }
  if (notice.list && notice.list.items.length > 0 && budget > 32) {
    const name = take(notice.list.title, L.fieldName);
    const value = take(notice.list.items.map((item) => `• ${md(item)}`).join('\n'), L.fieldValue, true);
    fields.push({ name, value, inline: false });
  }
  const text = notice.footer ? `${md(notice.text)}\n\n${md(notice.footer)}` : md(notice.text);
  const description = take(text, L.description, true);
  return {
    username,
    content: truncate(md(notice.title), L.content),
    allowed_mentions: { parse: [] },
    embeds: [
      {
        title,
        ...(description ? { description } : {}),
        color: colors[notice.tone],
        fields,
        footer: { text: footer },
        timestamp: notice.time,
      },
    ],
  };
}
