import { discord } from '@codegraph/notify';
import { afterEach, describe, expect, it } from 'vitest';
import { noticeEvents, oversizedRollback, releaseStarted, rollbackStarted } from './helpers/events.js';
import { checkDiscord } from './helpers/formats.js';
import { closeReceivers, startReceiver } from './helpers/receiver.js';

afterEach(closeReceivers);

const discordReceiver = () =>
  startReceiver({ check: checkDiscord, ok: { status: 204 }, pathPrefix: '/api/webhooks/1234567890' });

describe('discord', () => {
  it('posts every runbook notice as one embed Discord accepts', async () => {
    const r = await discordReceiver();
    const notifier = discord({ webhookUrl: r.url, minIntervalMs: 0 });
    for (const event of noticeEvents) await notifier.notify(event);
    expect(r.requests).toHaveLength(noticeEvents.length);
    for (const req of r.requests) expect(req.violations).toEqual([]);
    const alert = r.requests.find((q) => JSON.stringify(q.json).includes('P0 INCIDENT'))?.json as {
      embeds: Array<{ color: number; fields: Array<{ name: string }> }>;
    };
    expect(alert.embeds[0]?.color).toBe(0xe01e5a);
    expect(alert.embeds[0]?.fields.map((f) => f.name)).toEqual([
      'Status',
      'Impact',
      'Started',
      'Duration',
      'Actions Taken',
    ]);
  });

  it('keeps an oversized report within the embed limits and 6000 characters in total', async () => {
    const r = await discordReceiver();
    const notifier = discord({ webhookUrl: r.url, minIntervalMs: 0, username: 'r'.repeat(200) });
    await notifier.notify(oversizedRollback());
    expect(r.requests).toHaveLength(1);
    expect(r.requests[0]?.violations).toEqual([]);
  });

  it('never lets a notice ping @everyone', async () => {
    const r = await discordReceiver();
    const notifier = discord({ webhookUrl: r.url, minIntervalMs: 0 });
    await notifier.notify({ ...releaseStarted, reason: '@everyone look' });
    expect((r.requests[0]!.json as { allowed_mentions: unknown }).allowed_mentions).toEqual({ parse: [] });
  });

  it('honours the retry_after seconds in a 429 body', async () => {
    const r = await discordReceiver();
    r.script.push({
      status: 429,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'You are being rate limited.', retry_after: 0.4, global: false }),
    });
    const notifier = discord({ webhookUrl: r.url, minIntervalMs: 0, minBackoffMs: 5 });
    await notifier.notify(rollbackStarted);
    expect(r.requests).toHaveLength(2);
    expect((r.requests[1]?.at ?? 0) - (r.requests[0]?.at ?? 0)).toBeGreaterThanOrEqual(400);
  });
});
