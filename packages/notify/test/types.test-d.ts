// Type tests, checked by `tsc -p tsconfig.json --noEmit` (vitest runs only *.test.ts).

import {
  consoleNotifier,
  discord,
  fanOut,
  type Notice,
  type NoticeKind,
  pagerDuty,
  slack,
  type Templates,
  teams,
  webhook,
} from '@codegraph/notify';
import type { Notifier, ReleaseEventOf } from '@codegraph/release-core';
import { expectTypeOf } from 'vitest';

// Every factory returns a plain Notifier.
expectTypeOf(slack).returns.toEqualTypeOf<Notifier>();
expectTypeOf(teams).returns.toEqualTypeOf<Notifier>();
expectTypeOf(discord).returns.toEqualTypeOf<Notifier>();
expectTypeOf(pagerDuty).returns.toEqualTypeOf<Notifier>();
expectTypeOf(webhook).returns.toEqualTypeOf<Notifier>();
expectTypeOf(consoleNotifier).returns.toEqualTypeOf<Notifier>();
expectTypeOf(fanOut).returns.toEqualTypeOf<Notifier>();

// Templates are typed per event type: each receives its own event.
const templates: Templates = {
  'run.started': (event, fallback) => {
    expectTypeOf(event).toEqualTypeOf<ReleaseEventOf<'run.started'>>();
    expectTypeOf(fallback).toEqualTypeOf<Notice | null>();
    return fallback && { ...fallback, title: `Deploying ${event.version}` };
  },
  // @ts-expect-error a backup.failed event has no version
  'backup.failed': (event) => (event.version ? null : null),
  // @ts-expect-error a template returns a Notice or null, not a string
  'run.finished': () => 'done',
};
void templates;

// Options are checked: required secrets, known notice kinds and severities.
// @ts-expect-error webhookUrl is required
slack({});
// @ts-expect-error routingKey is required
pagerDuty({ url: 'https://events.pagerduty.com/v2/enqueue' });
// @ts-expect-error secret is required
webhook({ url: 'https://ops.example.com/hook' });
// @ts-expect-error P4 is not a runbook severity
consoleNotifier({ minSeverity: 'P4' });
// @ts-expect-error not a notice kind
const kind: NoticeKind = 'release.exploded';
void kind;
