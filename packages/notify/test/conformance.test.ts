import { PassThrough } from 'node:stream';
import { consoleNotifier, discord, fanOut, pagerDuty, slack, teams, webhook } from '@codegraph/notify';
import { testNotifier } from '@codegraph/release-core/testing';

// Every destination passes the same suite an in-house Notifier would run.
const fast = { retries: 1, minBackoffMs: 5, minIntervalMs: 0, timeoutMs: 1000 } as const;
const routingKey = 'CONF0RMANCEe93b1c2d3e4f5a6b7c8d9';
const secret = 'conformance-signing-secret-0042';

testNotifier({ name: 'slack', create: ({ url }) => slack({ webhookUrl: url, ...fast }) });
testNotifier({ name: 'teams', create: ({ url }) => teams({ webhookUrl: url, ...fast }) });
testNotifier({ name: 'discord', create: ({ url }) => discord({ webhookUrl: url, ...fast }) });
testNotifier({
  name: 'pagerduty',
  create: ({ url }) => pagerDuty({ routingKey, url, ...fast }),
  secrets: () => [routingKey],
});
testNotifier({
  name: 'webhook',
  create: ({ url }) => webhook({ url, secret, ...fast }),
  secrets: ({ url, token }) => [secret, url, token],
});
testNotifier({
  name: 'console',
  usesReceiver: false,
  create: () => consoleNotifier({ stream: new PassThrough() }),
});
testNotifier({
  name: 'fanOut(slack, webhook)',
  create: ({ url }) => fanOut([slack({ webhookUrl: url, ...fast }), webhook({ url, secret, ...fast })]),
  secrets: ({ url, token }) => [secret, url, token],
});
