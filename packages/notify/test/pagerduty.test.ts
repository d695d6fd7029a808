import { pagerDuty } from '@codegraph/notify';
import { ConfigInvalidError } from '@codegraph/release-core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  analysisFailed,
  backupFailed,
  oversizedRollback,
  promoted,
  releaseFailed,
  releaseStarted,
  rollbackResolved,
  rollbackStarted,
} from './helpers/events.js';
import { checkPagerDuty } from './helpers/formats.js';
import {
  captureLogs,
  closeReceivers,
  exposed,
  type Receiver,
  startReceiver,
  thrownBy,
} from './helpers/receiver.js';

afterEach(closeReceivers);

const routingKey = 'R0UT1NGKEYe93b1c2d3e4f5a6b7c8d9e';

async function pagerDutyReceiver(): Promise<Receiver> {
  const r = await startReceiver({ check: checkPagerDuty, ok: { status: 202 }, pathPrefix: '/v2' });
  // Answer like the Events API: 202 with the dedup_key.
  r.fallback = {
    status: 202,
    headers: { 'content-type': 'application/json' },
    body: '{"status":"success","message":"Event processed"}',
  };
  return r;
}

type PdEvent = {
  event_action: string;
  dedup_key: string;
  payload?: { severity: string; summary: string; source: string };
};
const sent = (r: Receiver) => r.requests.map((q) => q.json as PdEvent);

describe('pagerduty', () => {
  it('triggers a critical alert when an emergency rollback starts and resolves it with the same dedup_key when it succeeds', async () => {
    const r = await pagerDutyReceiver();
    const notifier = pagerDuty({ routingKey, url: `${r.url}/enqueue` });
    await notifier.notify(rollbackStarted);
    await notifier.notify(rollbackResolved);
    for (const q of r.requests) expect(q.violations).toEqual([]);
    const [trigger, resolve] = sent(r);
    expect(trigger?.event_action).toBe('trigger');
    expect(trigger?.payload?.severity).toBe('critical');
    expect(trigger?.payload?.summary).toContain('P0 INCIDENT');
    expect(trigger?.payload?.source).toBe('codegraph-production');
    expect(resolve?.event_action).toBe('resolve');
    expect(resolve?.dedup_key).toBe(trigger?.dedup_key);
    expect(trigger?.dedup_key).toBe(`codegraph/production/${rollbackStarted.runId}`);
  });

  it('pages a failed release and resolves that alert when a later release of the environment succeeds', async () => {
    const r = await pagerDutyReceiver();
    const notifier = pagerDuty({ routingKey, url: `${r.url}/enqueue` });
    await notifier.notify(releaseFailed);
    await notifier.notify(promoted);
    const [trigger, resolve] = sent(r);
    expect(trigger?.event_action).toBe('trigger');
    expect(trigger?.dedup_key).toBe(`codegraph/production/${releaseFailed.runId}`);
    expect(resolve).toEqual(
      expect.objectContaining({ event_action: 'resolve', dedup_key: trigger?.dedup_key }),
    );
    expect(r.requests).toHaveLength(2);
  });

  it('sends one alert per run: repeats of a run update the same dedup_key', async () => {
    const r = await pagerDutyReceiver();
    const notifier = pagerDuty({ routingKey, url: `${r.url}/enqueue`, dedupWindowMs: 0 });
    await notifier.notify(rollbackStarted);
    await notifier.notify({ ...rollbackStarted, resumed: true });
    expect(new Set(sent(r).map((e) => e.dedup_key)).size).toBe(1);
    expect(r.requests).toHaveLength(2);
  });

  it('pages only P0 and P1 by default: a started release, a failed analysis or backup do not page', async () => {
    const r = await pagerDutyReceiver();
    const notifier = pagerDuty({ routingKey, url: `${r.url}/enqueue` });
    for (const event of [releaseStarted, analysisFailed, backupFailed, promoted])
      await notifier.notify(event);
    expect(r.requests).toHaveLength(0);
    const wide = pagerDuty({ routingKey, url: `${r.url}/enqueue`, minSeverity: 'P2' });
    await wide.notify(analysisFailed);
    expect(sent(r).map((e) => [e.event_action, e.payload?.severity])).toEqual([['trigger', 'warning']]);
  });

  it('keeps the summary within 1024 characters', async () => {
    const r = await pagerDutyReceiver();
    const notifier = pagerDuty({ routingKey, url: `${r.url}/enqueue`, minSeverity: 'P3' });
    const huge = oversizedRollback();
    await notifier.notify({ ...huge, incident: { ...huge.incident!, severity: 'P0' } });
    expect(r.requests[0]?.violations).toEqual([]);
  });

  it('rejects a missing or malformed routing key with ConfigInvalidError before sending anything', () => {
    expect(() => pagerDuty({ routingKey: '' })).toThrow(ConfigInvalidError);
    expect(() => pagerDuty({} as never)).toThrow(ConfigInvalidError);
    let err: unknown;
    try {
      pagerDuty({ routingKey: 'short-SECRETVALUE-key' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigInvalidError);
    expect(exposed(err)).not.toContain('SECRETVALUE');
  });

  it('keeps the routing key out of errors and log lines, even when PagerDuty echoes it', async () => {
    const r = await pagerDutyReceiver();
    r.fallback = {
      status: 400,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        status: 'invalid event',
        message: 'Event object is invalid',
        errors: [`unknown routing key ${routingKey}`],
      }),
    };
    const { lines, logger } = captureLogs();
    const notifier = pagerDuty({ routingKey, url: `${r.url}/enqueue`, logger });
    const err = await thrownBy(() => notifier.notify(rollbackStarted));
    expect(r.requests).toHaveLength(1);
    const everything = `${exposed(err)}\n${lines.join('\n')}`;
    expect(everything).toContain('unknown routing key [REDACTED]');
    expect(everything).not.toContain(routingKey);
  });
});
