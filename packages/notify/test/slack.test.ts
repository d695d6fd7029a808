import { slack } from '@codegraph/notify';
import { ConfigInvalidError, NotifyFailedError } from '@codegraph/release-core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  noticeEvents,
  oversizedRollback,
  releaseStarted,
  rollbackResolved,
  rollbackStarted,
} from './helpers/events.js';
import { checkSlack } from './helpers/formats.js';
import { captureLogs, closeReceivers, exposed, startReceiver, thrownBy } from './helpers/receiver.js';

afterEach(closeReceivers);

const slackReceiver = () =>
  startReceiver({ check: checkSlack, ok: { status: 200, body: 'ok' }, pathPrefix: '/services' });
const allText = (json: unknown) => JSON.stringify(json);

describe('slack', () => {
  it('posts every runbook notice as a Block Kit message Slack accepts', async () => {
    const r = await slackReceiver();
    const notifier = slack({ webhookUrl: r.url, minIntervalMs: 0 });
    for (const event of noticeEvents) await notifier.notify(event);
    expect(r.requests).toHaveLength(noticeEvents.length);
    for (const req of r.requests) expect(req.violations).toEqual([]);
    const [alert] = r.requests.filter((q) => allText(q.json).includes('P0 INCIDENT'));
    expect(alert, 'the P0 initial alert').toBeDefined();
    for (const part of [
      'Status:',
      'Investigating',
      'Impact:',
      'Started:',
      'Duration:',
      'Actions Taken:',
      'Next Update:* In 15 minutes'.replace('*', ''),
    ]) {
      expect(allText(alert?.json)).toContain(part);
    }
    const resolved = r.requests.find((q) => allText(q.json).includes('RESOLVED'));
    for (const part of [
      'Status:',
      'Resolved',
      'Root Cause:',
      'Resolution:',
      'Post-Incident: Full post-mortem will be conducted',
    ]) {
      expect(allText(resolved?.json)).toContain(part);
    }
  });

  it('cuts long texts to Slack limits: header 150, section 3000, 50 blocks', async () => {
    const r = await slackReceiver();
    const notifier = slack({ webhookUrl: r.url, minIntervalMs: 0 });
    await notifier.notify(oversizedRollback());
    expect(r.requests).toHaveLength(1);
    expect(r.requests[0]?.violations).toEqual([]);
    const blocks = (r.requests[0]!.json as { blocks: Array<{ type: string; text?: { text: string } }> })
      .blocks;
    const header = blocks.find((b) => b.type === 'header')?.text?.text ?? '';
    expect(header.length).toBeLessThanOrEqual(150);
    expect(header.endsWith('…')).toBe(true);
    expect(Math.max(...blocks.map((b) => b.text?.text.length ?? 0))).toBeGreaterThan(2900);
  });

  it('escapes <, > and & so a version string cannot inject Slack links or mentions', async () => {
    const r = await slackReceiver();
    const notifier = slack({ webhookUrl: r.url, minIntervalMs: 0 });
    await notifier.notify({ ...releaseStarted, reason: 'fix <!channel> & <https://evil.example|click>' });
    const text = allText(r.requests[0]?.json);
    expect(text).toContain('&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;');
    expect(text).not.toContain('<!channel>');
  });

  it('spaces messages to one webhook at least one second apart (Slack: 1 message per second)', async () => {
    const r = await slackReceiver();
    const notifier = slack({ webhookUrl: r.url });
    await Promise.all([releaseStarted, rollbackStarted, rollbackResolved].map((e) => notifier.notify(e)));
    expect(r.requests).toHaveLength(3);
    const gaps = r.requests.slice(1).map((q, i) => q.at - (r.requests[i]?.at ?? 0));
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(1000);
  });

  it('waits the Retry-After a 429 asks for, then delivers', async () => {
    const r = await slackReceiver();
    r.script.push({ status: 429, headers: { 'retry-after': '1' }, body: 'rate_limited' });
    const notifier = slack({ webhookUrl: r.url, minIntervalMs: 0, minBackoffMs: 10 });
    await notifier.notify(rollbackStarted);
    expect(r.requests).toHaveLength(2);
    const waited = (r.requests[1]?.at ?? 0) - (r.requests[0]?.at ?? 0);
    expect(waited).toBeGreaterThanOrEqual(1000);
    expect(waited).toBeLessThan(2500);
  });

  it('reports at once when a 429 asks to wait longer than the delivery budget', async () => {
    const r = await slackReceiver();
    r.script.push({ status: 429, headers: { 'retry-after': '60' }, body: 'rate_limited' });
    const notifier = slack({ webhookUrl: r.url, minIntervalMs: 0, deliveryTimeoutMs: 3000 });
    const started = performance.now();
    const err = await thrownBy(() => notifier.notify(rollbackStarted));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(err).toBeInstanceOf(NotifyFailedError);
    expect((err as NotifyFailedError).message).toMatch(
      /answered 429 Too Many Requests; retry after 60000 ms; waiting 30000 ms would exceed the delivery budget$/,
    );
    expect((err as NotifyFailedError).cause).toMatchObject({ code: 'CG_RATE_LIMITED' });
    expect(r.requests).toHaveLength(1);
  });

  it('does not retry a 4xx other than 429 and reports it as CG_NOTIFY_FAILED', async () => {
    const r = await slackReceiver();
    r.script.push({ status: 404, body: 'no_service' });
    const notifier = slack({ webhookUrl: r.url, minIntervalMs: 0 });
    const err = await thrownBy(() => notifier.notify(rollbackStarted));
    expect(err).toBeInstanceOf(NotifyFailedError);
    expect((err as NotifyFailedError).code).toBe('CG_NOTIFY_FAILED');
    expect((err as NotifyFailedError).message).toContain('404');
    expect(r.requests).toHaveLength(1);
  });

  it('rejects a malformed webhook URL with ConfigInvalidError, without echoing it', () => {
    const secretish = 'hooks.slack.com/services/T000/B000/NotAUrlSecret123';
    let err: unknown;
    try {
      slack({ webhookUrl: secretish });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigInvalidError);
    expect(exposed(err)).not.toContain('NotAUrlSecret123');
    expect(() => slack({ webhookUrl: '' })).toThrow(ConfigInvalidError);
    expect(() => slack({ webhookUrl: 'ftp://hooks.slack.com/x' })).toThrow(ConfigInvalidError);
    expect(() => slack({ webhookUrl: 'https://hooks.slack.com/x', retries: -1 })).toThrow(ConfigInvalidError);
    expect(() => slack({ webhookUrl: 'https://hooks.slack.com/x', timeoutMs: 0 })).toThrow(
      ConfigInvalidError,
    );
    expect(() => slack({ webhookUrl: 'https://hooks.slack.com/x', deliveryTimeoutMs: Number.NaN })).toThrow(
      ConfigInvalidError,
    );
  });

  it('never writes the webhook URL or its token into errors or log lines', async () => {
    const r = await slackReceiver();
    // A destination that echoes the URL back in its error body, as some proxies do.
    r.fallback = { status: 500, body: `upstream failed for ${r.url}` };
    const { lines, logger } = captureLogs();
    const notifier = slack({ webhookUrl: r.url, minIntervalMs: 0, retries: 2, minBackoffMs: 5, logger });
    const err = await thrownBy(() => notifier.notify(rollbackStarted));
    expect(r.requests).toHaveLength(3);
    expect(lines.length).toBeGreaterThan(0);
    const everything = `${exposed(err)}\n${lines.join('\n')}`;
    expect(everything).toContain('[REDACTED]');
    expect(everything).not.toContain(r.token);
    expect(everything).not.toContain(new URL(r.url).pathname);
  });
});
