import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { discord, fanOut, pagerDuty, slack, teams, webhook } from '@codegraph/notify';
import {
  createReleaseEngine,
  fileStore,
  type Logger,
  type ReleaseEvent,
  rolling,
} from '@codegraph/release-core';
import { modelTarget } from '@codegraph/release-core/testing';
import { afterEach, describe, expect, it } from 'vitest';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function readAll(dir: string): Promise<string> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(await readFile(path.join(entry.parentPath, entry.name), 'utf8'));
  }
  return out.join('\n');
}

// Tokens on loopback URLs have no recognisable shape: only the notifier knows they are secrets.
const slackToken = 'slackPathToken-4242';
const teamsToken = 'teamsSigToken-4343';
const discordToken = 'discordToken-4444';
const hookSecret = 'webhook-signing-secret-4545';
const hookApiKey = 'hook-api-key-4646';
const routingKey = 'ROUTE0123456789abcdef0123456789a';

const notifiers = () => [
  slack({ webhookUrl: `http://127.0.0.1:9/services/${slackToken}` }),
  teams({ webhookUrl: `http://127.0.0.1:9/workflows/run?sig=${teamsToken}` }),
  discord({ webhookUrl: `http://127.0.0.1:9/api/webhooks/1/${discordToken}` }),
  pagerDuty({ routingKey, url: 'http://127.0.0.1:9/v2/enqueue' }),
  webhook({
    url: 'http://127.0.0.1:9/hooks/release',
    secret: hookSecret,
    headers: { 'x-api-key': hookApiKey },
  }),
];
const allSecrets = [slackToken, teamsToken, discordToken, hookSecret, hookApiKey, routingKey];

describe("every notifier's secrets are known to the engine's redactor", () => {
  it('each notifier, and a fan-out of them, exposes the credentials it holds', () => {
    const list = notifiers();
    const exposed = (n: { secrets?: ReadonlyArray<string> }) => (n.secrets ?? []).join(' ');
    expect(exposed(list[0]!)).toContain(slackToken);
    expect(exposed(list[1]!)).toContain(teamsToken);
    expect(exposed(list[2]!)).toContain(discordToken);
    expect(exposed(list[3]!)).toContain(routingKey);
    expect(exposed(list[4]!)).toContain(hookSecret);
    expect(exposed(list[4]!)).toContain(hookApiKey);
    const all = exposed(fanOut(list));
    for (const s of allSecrets) expect(all).toContain(s);
  });

  it('a secret echoed by a plugin never reaches the journal, events, logs or the result', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'cg-notify-secrets-'));
    dirs.push(dir);
    const model = modelTarget();
    // A target whose upstream echoes every notifier credential in its error message.
    const target = {
      ...model,
      name: 'echo',
      async provision() {
        throw new Error(`upstream refused: ${allSecrets.join(' ')}`);
      },
    };
    const lines: string[] = [];
    const logger: Logger = {
      debug: (m, f) => lines.push(m, JSON.stringify(f ?? {})),
      info: (m, f) => lines.push(m, JSON.stringify(f ?? {})),
      warn: (m, f) => lines.push(m, JSON.stringify(f ?? {})),
      error: (m, f) => lines.push(m, JSON.stringify(f ?? {})),
    };
    const engine = createReleaseEngine({
      environment: 'secrets',
      target,
      strategy: rolling(),
      store: fileStore({ dir }),
      notifiers: notifiers(),
      delivery: { timeoutMs: 200, retry: { retries: 0 } },
      metrics: false,
      logger,
    });
    const events: ReleaseEvent[] = [];
    engine.on('*', (e) => events.push(e));
    const result = await engine.release({ version: 'v1', reason: `paged ${routingKey}` });
    await engine.close?.();
    expect(result.status).not.toBe('succeeded');
    const everything = [
      JSON.stringify(result),
      JSON.stringify(events),
      lines.join('\n'),
      await readAll(dir),
    ].join('\n');
    expect(everything).toContain('upstream refused');
    for (const s of allSecrets) expect(everything, s).not.toContain(s);
  });
});
