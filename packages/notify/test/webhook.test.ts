import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { verifyWebhookSignature, webhook } from '@codegraph/notify';
import { ConfigInvalidError, NotifyFailedError } from '@codegraph/release-core';
import { afterEach, describe, expect, it } from 'vitest';
import { noticeEvents, rollbackStarted } from './helpers/events.js';
import { captureLogs, closeReceivers, exposed, startReceiver, thrownBy } from './helpers/receiver.js';

afterEach(closeReceivers);

const secret = 'whsec_7f3c9a1e5b2d4c6e8a0b1c2d';

/** The receiver's own check, written from the README recipe with node:crypto, not with the package. */
function checkSignature(_json: unknown, req: { headers: IncomingHttpHeaders; body: string }): string[] {
  const header = String(req.headers['x-codegraph-signature'] ?? '');
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!match) return [`signature header malformed: ${header}`];
  const [, t, v1] = match;
  const expected = createHmac('sha256', secret).update(`${t}.${req.body}`).digest('hex');
  const out: string[] = [];
  if (expected !== v1) out.push('signature does not match');
  if (Math.abs(Date.now() / 1000 - Number(t)) > 300) out.push('timestamp outside 5 minutes');
  if (!req.headers['x-codegraph-delivery']) out.push('x-codegraph-delivery missing');
  return out;
}

describe('signed webhook', () => {
  it('signs every notice so that an independent HMAC-SHA256 check accepts it', async () => {
    const r = await startReceiver({ check: checkSignature, ok: { status: 204 } });
    const notifier = webhook({ url: r.url, secret });
    for (const event of noticeEvents) await notifier.notify(event);
    expect(r.requests).toHaveLength(noticeEvents.length);
    for (const q of r.requests) expect(q.violations).toEqual([]);
    const first = r.requests[0]!;
    const body = first.json as {
      id: string;
      type: string;
      notice: { kind: string };
      event: { runId: string };
    };
    expect(body.type).toBe(noticeEvents[0]?.type);
    expect(body.notice.kind).toBe('release.started');
    expect(body.event.runId).toBe(noticeEvents[0]?.runId);
    expect(first.headers['x-codegraph-event']).toBe(body.type);
    expect(first.headers['x-codegraph-delivery']).toBe(body.id);
  });

  it('keeps the delivery id across a retry and signs each attempt with a fresh timestamp', async () => {
    const r = await startReceiver({ check: checkSignature, ok: { status: 200 } });
    r.script.push({ status: 503 });
    const notifier = webhook({ url: r.url, secret, minBackoffMs: 10 });
    await notifier.notify(rollbackStarted);
    expect(r.requests).toHaveLength(2);
    expect(r.requests.map((q) => q.violations)).toEqual([[], []]);
    expect(r.requests[0]?.headers['x-codegraph-delivery']).toBe(
      r.requests[1]?.headers['x-codegraph-delivery'],
    );
  });

  it('verifyWebhookSignature accepts a fresh signature and refuses replays, tampering and wrong secrets', () => {
    const body = JSON.stringify({ hello: 'world' });
    const now = 1_780_000_000;
    const sign = (t: number, key = secret, b = body) =>
      `t=${t},v1=${createHmac('sha256', key).update(`${t}.${b}`).digest('hex')}`;
    expect(verifyWebhookSignature({ secret, header: sign(now), body, now })).toBe(true);
    expect(verifyWebhookSignature({ secret, header: sign(now - 299), body, now })).toBe(true);
    expect(
      verifyWebhookSignature({ secret, header: sign(now - 301), body, now }),
      'replayed after 5 min',
    ).toBe(false);
    expect(verifyWebhookSignature({ secret, header: sign(now - 30), body, now, toleranceSeconds: 10 })).toBe(
      false,
    );
    expect(verifyWebhookSignature({ secret, header: sign(now), body: `${body} `, now }), 'tampered').toBe(
      false,
    );
    expect(verifyWebhookSignature({ secret, header: sign(now, 'another-secret-value'), body, now })).toBe(
      false,
    );
    expect(verifyWebhookSignature({ secret, header: undefined, body, now })).toBe(false);
    expect(verifyWebhookSignature({ secret, header: 'v1=abc', body, now })).toBe(false);
  });

  it('verifyWebhookSignature refuses to check with an empty or missing secret (every signature would be forgeable)', () => {
    const body = '{}';
    const now = 1_780_000_000;
    const forged = `t=${now},v1=${createHmac('sha256', '').update(`${now}.${body}`).digest('hex')}`;
    for (const bad of ['', undefined, null, 42]) {
      expect(
        () => verifyWebhookSignature({ secret: bad as never, header: forged, body, now }),
        String(bad),
      ).toThrow(ConfigInvalidError);
    }
  });

  it('verifyWebhookSignature hashes the exact bytes received, so two bodies never share a signature', () => {
    const now = 1_780_000_000;
    // Two different byte bodies that decode to the same UTF-8 string (invalid bytes become U+FFFD).
    const a = Buffer.from([0x7b, 0xff, 0x7d]);
    const b = Buffer.from([0x7b, 0xfe, 0x7d]);
    expect(a.toString('utf8')).toBe(b.toString('utf8'));
    const header = `t=${now},v1=${createHmac('sha256', secret).update(`${now}.`).update(a).digest('hex')}`;
    expect(verifyWebhookSignature({ secret, header, body: a, now })).toBe(true);
    expect(verifyWebhookSignature({ secret, header, body: b, now })).toBe(false);
    expect(verifyWebhookSignature({ secret, header, body: new Uint8Array(a), now })).toBe(true);
  });

  it('gives up on a receiver that never answers within the delivery budget', async () => {
    const r = await startReceiver({ check: checkSignature, ok: 'hang' });
    const { lines, logger } = captureLogs();
    const notifier = webhook({
      url: r.url,
      secret,
      timeoutMs: 300,
      retries: 5,
      minBackoffMs: 10,
      deliveryTimeoutMs: 1000,
      logger,
    });
    const started = performance.now();
    const err = await thrownBy(() => notifier.notify(rollbackStarted));
    const took = performance.now() - started;
    expect(err).toBeInstanceOf(NotifyFailedError);
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(2000);
    expect(r.requests.length).toBeGreaterThanOrEqual(2);
    expect(`${exposed(err)}\n${lines.join('\n')}`).not.toContain(secret);
  });

  it('rejects a short secret or a bad URL with ConfigInvalidError, naming neither', () => {
    expect(() => webhook({ url: 'https://ops.example.com/hook', secret: 'tooShort' })).toThrow(
      ConfigInvalidError,
    );
    expect(() => webhook({ url: 'not a url', secret })).toThrow(ConfigInvalidError);
    let err: unknown;
    try {
      webhook({ url: 'https://ops.example.com/hook', secret: 'tooShortSecret' });
    } catch (e) {
      err = e;
    }
    expect(exposed(err)).not.toContain('tooShortSecret');
  });
});
