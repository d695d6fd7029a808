import { teams } from '@codegraph/notify';
import { NotifyFailedError } from '@codegraph/release-core';
import { afterEach, describe, expect, it } from 'vitest';
import { noticeEvents, oversizedRollback, rollbackStarted } from './helpers/events.js';
import { checkTeams } from './helpers/formats.js';
import { captureLogs, closeReceivers, exposed, startReceiver, thrownBy } from './helpers/receiver.js';

afterEach(closeReceivers);

// A Teams Workflows trigger URL carries its secret in the `sig` query parameter.
const teamsReceiver = async () => {
  const r = await startReceiver({ check: checkTeams, ok: { status: 202 }, pathPrefix: '/workflows' });
  const url = `${r.url}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=Sig${r.token}`;
  return { r, url };
};

describe('teams', () => {
  it('posts every runbook notice as a message with one Adaptive Card attachment', async () => {
    const { r, url } = await teamsReceiver();
    const notifier = teams({ webhookUrl: url, minIntervalMs: 0 });
    for (const event of noticeEvents) await notifier.notify(event);
    expect(r.requests).toHaveLength(noticeEvents.length);
    for (const req of r.requests) expect(req.violations).toEqual([]);
    const alert = r.requests.map((q) => JSON.stringify(q.json)).find((t) => t.includes('P0 INCIDENT'));
    expect(alert).toContain('"color":"Attention"');
    expect(alert).toContain(
      '"title":"Next Update"'.replace('"title":"Next Update"', 'Next Update: In 15 minutes'),
    );
    expect(alert).toContain('"FactSet"');
  });

  it('keeps an oversized incident report under the 28 KB message limit', async () => {
    const { r, url } = await teamsReceiver();
    const notifier = teams({ webhookUrl: url, minIntervalMs: 0 });
    await notifier.notify(oversizedRollback());
    expect(r.requests).toHaveLength(1);
    expect(r.requests[0]?.violations).toEqual([]);
    expect(Buffer.byteLength(r.requests[0]?.body ?? '')).toBeLessThanOrEqual(28 * 1024);
    expect(r.requests[0]?.body).toContain('…');
  });

  it('retries a 500 with backoff, then reports NotifyFailedError with the attempts made', async () => {
    const { r, url } = await teamsReceiver();
    r.fallback = { status: 500, body: 'BadGateway' };
    const notifier = teams({ webhookUrl: url, minIntervalMs: 0, retries: 3, minBackoffMs: 20 });
    const err = await thrownBy(() => notifier.notify(rollbackStarted));
    expect(r.requests).toHaveLength(4);
    expect(err).toBeInstanceOf(NotifyFailedError);
    const e = err as NotifyFailedError;
    expect(e.code).toBe('CG_NOTIFY_FAILED');
    expect(e.details?.['attempts']).toBe(4);
    expect(e.details?.['status']).toBe(500);
    // Backoff doubles: 20, 40, 80 ms between attempts.
    const gaps = r.requests.slice(1).map((q, i) => q.at - (r.requests[i]?.at ?? 0));
    expect(gaps[2]).toBeGreaterThanOrEqual(80);
  });

  it('delivers after a 500 when the next attempt succeeds', async () => {
    const { r, url } = await teamsReceiver();
    r.script.push({ status: 502 });
    const notifier = teams({ webhookUrl: url, minIntervalMs: 0, minBackoffMs: 10 });
    await notifier.notify(rollbackStarted);
    expect(r.requests.map((q) => q.violations)).toEqual([[], []]);
  });

  it('never writes the sig of the workflow URL into errors or log lines', async () => {
    const { r, url } = await teamsReceiver();
    r.fallback = {
      status: 401,
      body: `{"error":{"code":"DirectApiAuthorizationRequired","message":"bad sig Sig${r.token}"}}`,
    };
    const { lines, logger } = captureLogs();
    const notifier = teams({ webhookUrl: url, minIntervalMs: 0, logger });
    const err = await thrownBy(() => notifier.notify(rollbackStarted));
    expect(r.requests).toHaveLength(1);
    const everything = `${exposed(err)}\n${lines.join('\n')}`;
    expect(everything).toContain('401');
    expect(everything).not.toContain(r.token);
  });
});
