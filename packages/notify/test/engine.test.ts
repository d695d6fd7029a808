// End to end: the real release engine (core) on its embedded local target, releasing a real sample
// service, tells real receivers what happened. Uses core's release environment test helper.
import { pagerDuty, slack, teams } from '@codegraph/notify';
import { afterEach, describe, expect, it } from 'vitest';
import { releaseEnv } from '../../core/test/helpers/release-env.js';
import { checkPagerDuty, checkSlack, checkTeams } from './helpers/formats.js';
import { closeReceivers, startReceiver, waitFor } from './helpers/receiver.js';

type Env = Awaited<ReturnType<typeof releaseEnv>>;
let env: Env | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
  await closeReceivers();
});

const routingKey = 'ENG1NEe93b1c2d3e4f5a6b7c8d9e0f1a';

describe('notifications from a real release engine', () => {
  it('announces a release, its automatic rollback and an emergency rollback; a broken Teams webhook never fails them', async () => {
    const slackR = await startReceiver({ check: checkSlack, ok: { status: 200, body: 'ok' } });
    const pdR = await startReceiver({
      check: checkPagerDuty,
      ok: { status: 202, body: '{"status":"success"}' },
    });
    const teamsR = await startReceiver({
      check: checkTeams,
      ok: { status: 500, body: 'InternalServerError' },
    });
    env = await releaseEnv({
      faults: { v3: { FAULT_ERROR_RATE: '1' } },
      engine: {
        notifiers: [
          slack({ webhookUrl: slackR.url, minIntervalMs: 0 }),
          pagerDuty({ routingKey, url: pdR.url, minSeverity: 'P2' }),
          teams({ webhookUrl: teamsR.url, retries: 1, minBackoffMs: 5 }),
        ],
        delivery: { timeoutMs: 5_000, retry: { retries: 0 } },
      },
    });
    expect((await env.engine.release({ version: 'v1' })).status).toBe('succeeded');
    expect((await env.engine.release({ version: 'v2' })).status).toBe('succeeded');
    const failed = await env.engine.release({ version: 'v3' });
    expect(failed.status).toBe('rolled-back');
    const rollback = await env.engine.rollback({
      to: 'v1',
      reason: 'Critical performance regression',
      confirm: 'CONFIRM',
    });
    expect(rollback.status).toBe('succeeded');

    const slackTitles = () =>
      slackR.requests.map(
        (q) => (q.json as { blocks: Array<{ text?: { text: string } }> }).blocks[0]?.text?.text ?? '',
      );
    await waitFor(
      () => slackTitles().some((t) => t.startsWith('✅ RESOLVED')),
      10_000,
      'the resolution notice in Slack',
    );
    for (const q of slackR.requests) expect(q.violations).toEqual([]);
    const titles = slackTitles();
    expect(titles).toContain('🚀 Release v3 started in staging');
    expect(titles).toContain('✅ v2 promoted in staging');
    expect(titles.some((t) => t.startsWith('↩️ v3 rolled back in staging'))).toBe(true);
    expect(
      titles.some((t) => t.startsWith('🚨 P0 INCIDENT: CodeGraph staging emergency rollback to v1')),
    ).toBe(true);

    // PagerDuty: the rolled-back release pages (P2 and up here); the emergency rollback triggers and resolves.
    await waitFor(
      () =>
        pdR.requests.filter((q) => (q.json as { event_action: string }).event_action === 'resolve').length >=
        2,
      10_000,
      'PagerDuty resolves',
    );
    for (const q of pdR.requests) expect(q.violations).toEqual([]);
    const pd = pdR.requests.map((q) => q.json as { event_action: string; dedup_key: string });
    const rollbackKey = `codegraph/staging/${rollback.runId}`;
    expect(pd.filter((e) => e.dedup_key === rollbackKey).map((e) => e.event_action)).toEqual([
      'trigger',
      'resolve',
    ]);
    // The failed release's failed analysis and its rollback update one alert (one dedup_key per run).
    const failedKey = `codegraph/staging/${failed.runId}`;
    const forFailed = pd.filter((e) => e.dedup_key === failedKey).map((e) => e.event_action);
    expect(forFailed).toEqual(['trigger', 'trigger', 'resolve']);

    // Teams failed every time: reported as notification.failed, without its secret.
    await waitFor(
      () => env!.events.some((e) => e.type === 'notification.failed' && e.notifier === 'teams'),
      10_000,
      'a teams failure event',
    );
    expect(teamsR.requests.length).toBeGreaterThan(0);
    const everything = JSON.stringify(env.events) + env.logger.lines.join('\n');
    for (const r of [slackR, pdR, teamsR]) {
      expect(everything).not.toContain(r.token);
    }
    expect(everything).not.toContain(routingKey);
  });
});
