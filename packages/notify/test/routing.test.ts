import { PassThrough } from 'node:stream';
import { consoleNotifier, fanOut, type Notice, slack, teams } from '@codegraph/notify';
import { type Notifier, NotifyFailedError } from '@codegraph/release-core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  analysisFailed,
  backupFailed,
  noticeEvents,
  releaseFailed,
  releaseStarted,
  rollbackStarted,
  rolledBack,
  trafficShifted,
} from './helpers/events.js';
import { checkSlack, checkTeams } from './helpers/formats.js';
import { closeReceivers, exposed, startReceiver, thrownBy, waitFor } from './helpers/receiver.js';

afterEach(closeReceivers);

/** A console notifier writing JSON lines into memory. */
function jsonConsole(options: Parameters<typeof consoleNotifier>[0] = {}) {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => {
    text += c.toString('utf8');
  });
  const notifier = consoleNotifier({ ...options, stream, format: 'json' });
  const notices = () =>
    text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Notice);
  return { notifier, notices };
}

describe('routing', () => {
  it('sends a destination only the severities it is routed: minSeverity P1 gets P0 and P1', async () => {
    const { notifier, notices } = jsonConsole({ minSeverity: 'P1' });
    for (const event of noticeEvents) await notifier.notify(event);
    expect(notices().map((n) => [n.kind, n.severity])).toEqual([
      ['release.rolled-back', 'P1'],
      ['incident.opened', 'P0'],
      ['incident.resolved', 'P0'],
      ['release.failed', 'P0'],
    ]);
  });

  it('sends a destination only the notice kinds it is routed', async () => {
    const { notifier, notices } = jsonConsole({ notices: ['backup.failed', 'analysis.failed'] });
    for (const event of noticeEvents) await notifier.notify(event);
    expect(notices().map((n) => n.kind)).toEqual(['analysis.failed', 'backup.failed']);
    expect(() => consoleNotifier({ notices: ['release.exploded' as never] })).toThrow(/unknown notice kind/);
  });

  it('tells the engine which event types a destination wants', () => {
    const { notifier } = jsonConsole({ events: ['run.finished'] });
    expect(notifier.events).toEqual(['run.finished']);
    const { notifier: all } = jsonConsole();
    expect(all.events).toBeUndefined();
  });

  it('announces traffic weight changes only when asked', async () => {
    const quiet = jsonConsole();
    await quiet.notifier.notify(trafficShifted);
    expect(quiet.notices()).toEqual([]);
    const chatty = jsonConsole({ weightChanges: true });
    await chatty.notifier.notify(trafficShifted);
    expect(chatty.notices().map((n) => [n.kind, n.text])).toEqual([
      ['weight.changed', 'Traffic now goes stable 80% · canary 20%.'],
    ]);
  });

  it('drops a repeat of the same notice within the dedup window and sends it again after the window', async () => {
    const { notifier, notices } = jsonConsole({ dedupWindowMs: 300 });
    await notifier.notify(analysisFailed);
    await notifier.notify(analysisFailed);
    await notifier.notify(backupFailed);
    expect(notices().map((n) => n.kind)).toEqual(['analysis.failed', 'backup.failed']);
    const sentAt = performance.now();
    // Poll: repeat the notice until the window has passed and it goes out again.
    while (notices().length < 3 && performance.now() - sentAt < 3000) {
      await notifier.notify(analysisFailed);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(notices().map((n) => n.kind)).toEqual(['analysis.failed', 'backup.failed', 'analysis.failed']);
    expect(performance.now() - sentAt).toBeGreaterThanOrEqual(290);
  });

  it('lets users override any template, typed per event type, and silence or add notices', async () => {
    const { notifier, notices } = jsonConsole({
      templates: {
        'run.started': (event, fallback) =>
          fallback && { ...fallback, title: `Deploying ${event.version} (owner: @release-team)` },
        'backup.failed': () => null,
        'backup.created': (event) => ({
          kind: 'release.started',
          severity: 'P3',
          tone: 'info',
          title: `Backup ${event.backupId} taken`,
          text: `by ${event.provider}`,
          fields: [],
          runId: event.runId,
          environment: event.environment,
          time: event.time,
        }),
      },
    });
    await notifier.notify(releaseStarted);
    await notifier.notify(backupFailed);
    await notifier.notify({
      ...releaseStarted,
      type: 'backup.created',
      backupId: 'bk-1',
      provider: 'rocksdb',
    } as never);
    expect(notices().map((n) => n.title)).toEqual([
      'Deploying v1.2.3 (owner: @release-team)',
      'Backup bk-1 taken',
    ]);
  });

  it('reports a template that throws as CG_NOTIFY_FAILED, not retryable', async () => {
    const { notifier } = jsonConsole({
      templates: {
        'run.started': () => {
          throw new Error('template bug');
        },
      },
    });
    const err = await thrownBy(() => notifier.notify(releaseStarted));
    expect(err).toBeInstanceOf(NotifyFailedError);
    expect((err as NotifyFailedError).retryable).toBe(false);
    expect((err as NotifyFailedError).message).toContain('template bug');
  });

  it('prints the runbook layout on the console', async () => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (c: Buffer) => {
      text += c.toString('utf8');
    });
    await consoleNotifier({ stream }).notify(rollbackStarted);
    expect(text.split('\n').slice(0, 1)[0]).toMatch(
      /^🚨 P0 INCIDENT: CodeGraph production emergency rollback to v1.2.2/,
    );
    expect(text).toMatch(
      /\nStatus: Investigating.*\nImpact: .*\nStarted: .*\nDuration: .*\nActions Taken:\n- .*/,
    );
    expect(text).toContain('\nNext Update: In 15 minutes\n');
  });
});

describe('fanOut', () => {
  it('keeps delivering to healthy destinations while one never answers, within the delivery budget', async () => {
    const hanging = await startReceiver({ check: checkSlack, ok: 'hang' });
    const healthy = await startReceiver({ check: checkTeams, ok: { status: 202 } });
    const local = jsonConsole();
    const failures: Array<{ notifier: string; code: string; text: string }> = [];
    const notifier = fanOut(
      [
        slack({ webhookUrl: hanging.url, timeoutMs: 5000 }),
        teams({ webhookUrl: healthy.url }),
        local.notifier,
      ],
      {
        deliveryTimeoutMs: 800,
        onError: ({ notifier, error }) => failures.push({ notifier, code: error.code, text: exposed(error) }),
      },
    );
    const started = performance.now();
    await notifier.notify(rolledBack);
    const took = performance.now() - started;
    expect(took).toBeLessThan(1500);
    expect(healthy.requests).toHaveLength(1);
    expect(local.notices()).toHaveLength(1);
    expect(hanging.requests).toHaveLength(1);
    expect(failures.map((f) => [f.notifier, f.code])).toEqual([['slack', 'CG_NOTIFY_FAILED']]);
    expect(failures[0]?.text).not.toContain(hanging.token);
  });

  it('gives each destination its own queue: a slow one does not delay the next event elsewhere', async () => {
    const slow = await startReceiver({ check: checkSlack, ok: { status: 200, body: 'ok' } });
    const fast = await startReceiver({ check: checkTeams, ok: { status: 202 } });
    const notifier = fanOut(
      [slack({ webhookUrl: slow.url }), teams({ webhookUrl: fast.url, minIntervalMs: 0 })],
      {
        deliveryTimeoutMs: 5000,
      },
    );
    // Slack paces to 1 message per second; Teams gets both events at once.
    const both = Promise.all([notifier.notify(releaseStarted), notifier.notify(rollbackStarted)]);
    await waitFor(() => fast.requests.length === 2, 800, 'both Teams messages before Slack sent its second');
    expect(slow.requests.length).toBeLessThanOrEqual(1);
    await both;
    expect(slow.requests).toHaveLength(2);
  });

  it('bounds an in-house notifier that ignores its AbortSignal', async () => {
    const stuck: Notifier = { name: 'stuck', notify: () => new Promise<void>(() => {}) };
    const { notifier: local, notices } = jsonConsole();
    const notifier = fanOut([stuck, local], { deliveryTimeoutMs: 300 });
    const started = performance.now();
    const err = await thrownBy(() => notifier.notify(releaseFailed));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(notices()).toHaveLength(1);
    expect(err).toBeInstanceOf(NotifyFailedError);
    expect((err as NotifyFailedError).message).toBe(
      'fan-out: 1 of 2 notifier(s) failed: stuck (CG_NOTIFY_FAILED)',
    );
  });

  it('only hands a notifier the event types it wants', async () => {
    const seen: string[] = [];
    const picky: Notifier = {
      name: 'picky',
      events: ['run.finished'],
      notify: async (e) => void seen.push(e.type),
    };
    const notifier = fanOut([picky]);
    expect(notifier.events).toEqual(['run.finished']);
    await notifier.notify(releaseStarted);
    await notifier.notify(rolledBack);
    expect(seen).toEqual(['run.finished']);
  });
});
