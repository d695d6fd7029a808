import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializeError } from '../errors.js';
import type { ReleaseEvent, ReleaseEventOf, ReleaseEventType } from '../events/types.js';
import type { Logger } from '../logger.js';
import type { Notifier } from '../notify/types.js';

/** How the suite's local receiver answers. */
export type ReceiverMode = 'ok' | 'server-error' | 'bad-request' | 'hang';

/** A request the suite's receiver got. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** `performance.now()` when the request's body had arrived. */
  at: number;
}

/** What the suite hands to `create`: a real HTTP receiver on 127.0.0.1. */
export interface NotifierSuiteReceiver {
  /** `http://127.0.0.1:<port>/hooks/<random token>`: the token plays the webhook URL's secret. */
  url: string;
  /** The random token in the URL's path. */
  token: string;
}

/** Options of {@link testNotifier}. */
export interface NotifierSuiteOptions {
  /** Shown in the describe block. @default 'Notifier' */
  name?: string;
  /**
   * Builds the notifier under test, pointed at the receiver's URL (HTTP notifiers) or not. Called
   * once per test.
   */
  create(receiver: NotifierSuiteReceiver): Notifier | Promise<Notifier>;
  /**
   * Strings that must never appear in errors or log lines: the webhook URL, tokens, routing keys,
   * signing secrets the notifier was given. @default the receiver's URL and token
   */
  secrets?(receiver: NotifierSuiteReceiver): string[];
  /** Whether the notifier sends to the receiver's URL. @default true */
  usesReceiver?: boolean;
  /** Events to deliver. @default {@link sampleReleaseEvents}() */
  events?: ReleaseEvent[];
  /** An event the notifier surely sends (used for failure and abort tests). @default a rolled-back release */
  alertEvent?: ReleaseEvent;
  /** Longest time `notify()` may take to settle once its signal aborts. @default 2000 */
  abortWithinMs?: number;
}

const T0 = Date.parse('2026-03-02T10:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const base = (kind: ReleaseEvent['kind'] = 'release', runId = 'run-release-1') => ({
  runId,
  environment: 'production',
  kind,
});

/**
 * One realistic event of every type the engine emits, plus the variants notifiers treat differently
 * (a release that succeeds, is rolled back or fails; an emergency rollback that starts and resolves).
 */
export function sampleReleaseEvents(): ReleaseEvent[] {
  const failedAnalysis = {
    name: 'canary-20',
    verdict: 'fail' as const,
    reason: 'p95_latency_ms 112 > 50 in 3 of 3 measurements',
    measurements: [
      {
        verifier: 'prometheus',
        at: at(60),
        verdict: 'fail' as const,
        checks: [
          {
            name: 'p95_latency_ms',
            verdict: 'fail' as const,
            observed: 112,
            threshold: '< 50',
            reason: 'p95 latency above the 50 ms target',
          },
        ],
      },
    ],
  };
  const byType: { [T in ReleaseEventType]: Array<ReleaseEventOf<T>> } = {
    'run.started': [
      {
        ...base(),
        type: 'run.started',
        time: at(0),
        version: 'v1.2.3',
        from: 'v1.2.2',
        reason: 'weekly release',
      },
      {
        ...base('rollback', 'run-rollback-1'),
        type: 'run.started',
        time: at(300),
        version: 'v1.2.2',
        from: 'v1.2.3',
        reason: 'Critical performance regression',
      },
    ],
    'phase.started': [{ ...base(), type: 'phase.started', time: at(1), phase: 'deploy' }],
    'phase.finished': [
      { ...base(), type: 'phase.finished', time: at(2), phase: 'preflight', ok: true, durationMs: 1200 },
    ],
    'analysis.measured': [
      {
        ...base(),
        type: 'analysis.measured',
        time: at(60),
        version: 'v1.2.3',
        gate: 'canary-20',
        verifier: 'prometheus',
        round: 0,
        metric: 'p95_latency_ms[canary]',
        pool: 'canary',
        value: 112,
        limit: '<= 50',
        verdict: 'fail',
        query: 'histogram_quantile(0.95, ...)',
        reason: 'p95 latency above the 50 ms target',
      },
    ],
    'action.started': [
      {
        ...base(),
        type: 'action.started',
        time: at(3),
        phase: 'deploy',
        index: 1,
        action: { type: 'route', weights: { stable: 80, canary: 20 } },
      },
    ],
    'action.finished': [
      {
        ...base(),
        type: 'action.finished',
        time: at(4),
        phase: 'deploy',
        index: 1,
        action: { type: 'route', weights: { stable: 80, canary: 20 } },
        outcome: { weights: { stable: 80, canary: 20 } },
        durationMs: 40,
      },
    ],
    'traffic.shifted': [
      { ...base(), type: 'traffic.shifted', time: at(5), weights: { stable: 80, canary: 20 } },
    ],
    'analysis.finished': [
      { ...base(), type: 'analysis.finished', time: at(60), version: 'v1.2.3', result: failedAnalysis },
    ],
    'backup.created': [
      { ...base(), type: 'backup.created', time: at(6), backupId: 'bk-20260302-100006', provider: 'rocksdb' },
    ],
    'backup.failed': [
      {
        ...base(),
        type: 'backup.failed',
        time: at(7),
        provider: 'rocksdb',
        error: {
          name: 'BackupFailedError',
          code: 'CG_BACKUP_FAILED',
          message: 'checkpoint failed: disk full',
        },
      },
    ],
    'notification.failed': [
      {
        ...base(),
        type: 'notification.failed',
        time: at(8),
        notifier: 'slack',
        eventType: 'run.started',
        error: { name: 'NotifyFailedError', code: 'CG_NOTIFY_FAILED', message: 'slack answered 500' },
      },
    ],
    'plugin.abandoned': [
      {
        ...base(),
        type: 'plugin.abandoned',
        time: at(9),
        pluginKind: 'verifier',
        plugin: 'prometheus',
        method: 'verify',
        phase: 'analysis',
        reason: 'deadline',
        afterMs: 120_000,
      },
    ],
    'run.finished': [
      {
        ...base(),
        type: 'run.finished',
        time: at(90),
        status: 'rolled-back',
        version: 'v1.2.3',
        from: 'v1.2.2',
        serving: 'v1.2.2',
        reason: 'analysis canary-20 failed',
        durationMs: 90_000,
        backupId: 'bk-20260302-100006',
        incident: {
          severity: 'P1',
          summary: 'Release v1.2.3 failed its canary analysis and was rolled back to v1.2.2',
          reason: 'p95_latency_ms 112 > 50',
          from: 'v1.2.3',
          to: 'v1.2.2',
          startedAt: at(0),
          finishedAt: at(90),
          durationMs: 90_000,
          backupId: 'bk-20260302-100006',
          actions: ['Routed 100% of traffic to v1.2.2', 'Retired pool canary'],
          analyses: [
            failedAnalysis,
            { name: 'post-rollback', verdict: 'pass', reason: 'all checks passed', measurements: [] },
          ],
          status: 'rolled-back',
        },
      },
      {
        ...base('rollback', 'run-rollback-1'),
        type: 'run.finished',
        time: at(420),
        status: 'succeeded',
        version: 'v1.2.2',
        from: 'v1.2.3',
        serving: 'v1.2.2',
        reason: 'Critical performance regression',
        durationMs: 120_000,
        backupId: 'bk-20260302-100500',
        incident: {
          severity: 'P0',
          summary: 'Emergency rollback of production from v1.2.3 to v1.2.2 succeeded',
          reason: 'Critical performance regression',
          from: 'v1.2.3',
          to: 'v1.2.2',
          startedAt: at(300),
          finishedAt: at(420),
          durationMs: 120_000,
          backupId: 'bk-20260302-100500',
          actions: ['Pre-rollback backup bk-20260302-100500', 'Switched traffic to v1.2.2'],
          analyses: [
            { name: 'validation-suite', verdict: 'pass', reason: 'all checks passed', measurements: [] },
          ],
          status: 'succeeded',
        },
      },
      {
        ...base('release', 'run-release-2'),
        type: 'run.finished',
        time: at(900),
        status: 'succeeded',
        version: 'v1.2.4',
        from: 'v1.2.2',
        serving: 'v1.2.4',
        durationMs: 240_000,
      },
      {
        ...base('release', 'run-release-3'),
        type: 'run.finished',
        time: at(1200),
        status: 'failed',
        version: 'v1.2.5',
        from: 'v1.2.4',
        durationMs: 30_000,
        error: { name: 'TargetOperationError', code: 'CG_TARGET_FAILED', message: 'pool blue did not start' },
      },
    ],
  };
  return Object.values(byType).flat() as ReleaseEvent[];
}

interface Receiver extends NotifierSuiteReceiver {
  mode: ReceiverMode;
  requests: ReceivedRequest[];
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const token = randomBytes(16).toString('hex');
  const hanging = new Set<ServerResponse>();
  const receiver = { token, mode: 'ok' as ReceiverMode, requests: [] as ReceivedRequest[] } as Receiver;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: performance.now(),
      });
      if (receiver.mode === 'hang') {
        hanging.add(res);
        return;
      }
      const status = { ok: 200, 'server-error': 500, 'bad-request': 400 }[receiver.mode];
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  receiver.url = `http://127.0.0.1:${port}/hooks/${token}`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}

/** A logger that keeps every line, so tests can search them. */
function capturingLogger(lines: string[]): Logger {
  const keep =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push(`${level} ${message} ${fields ? JSON.stringify(fields) : ''}`);
    };
  return { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') };
}

/** Every text an error exposes: message, stack, JSON form, and the same for its causes. */
function exposed(err: unknown, depth = 0): string {
  if (depth > 5 || err === undefined || err === null) return '';
  if (!(err instanceof Error)) return String(err);
  let json = '';
  try {
    json = JSON.stringify(serializeError(err));
  } catch {
    json = '';
  }
  return [err.message, err.stack ?? '', json, exposed(err.cause, depth + 1)].join('\n');
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * The conformance suite every Notifier passes: it delivers each event type without throwing, never
 * leaks its declared secrets in errors or log lines, and honours its AbortSignal. Runs against a real
 * HTTP receiver on 127.0.0.1 that answers 200, 400, 500 or never.
 *
 * @example
 * ```ts
 * import { testNotifier } from '@codegraph/release-core/testing'
 * testNotifier({
 *   name: 'our chat notifier',
 *   create: ({ url }) => chatNotifier({ webhookUrl: url, retries: 1 }),
 * })
 * ```
 */
export function testNotifier(options: NotifierSuiteOptions): void {
  const usesReceiver = options.usesReceiver ?? true;
  const abortWithinMs = options.abortWithinMs ?? 2000;
  const events = options.events ?? sampleReleaseEvents();
  const alert =
    options.alertEvent ??
    events.find((e) => e.type === 'run.finished' && e.status === 'rolled-back') ??
    events[0]!;

  describe(`${options.name ?? 'Notifier'} conformance`, () => {
    let receiver: Receiver;
    let secrets: string[];
    const notifiers: Notifier[] = [];
    const make = async () => {
      const notifier = await options.create({ url: receiver.url, token: receiver.token });
      notifiers.push(notifier);
      return notifier;
    };

    beforeAll(async () => {
      receiver = await startReceiver();
      secrets = options.secrets?.({ url: receiver.url, token: receiver.token }) ?? [
        receiver.url,
        receiver.token,
      ];
    });
    afterAll(async () => {
      receiver.mode = 'ok';
      await Promise.allSettled(notifiers.map((n) => n.close?.()));
      await receiver.close();
    });

    it('has a name', async () => {
      const notifier = await make();
      expect(typeof notifier.name).toBe('string');
      expect(notifier.name.length).toBeGreaterThan(0);
    });

    it('delivers every event type without throwing', async () => {
      receiver.mode = 'ok';
      const before = receiver.requests.length;
      const notifier = await make();
      const lines: string[] = [];
      for (const event of events) {
        if (notifier.events && !notifier.events.includes(event.type)) continue;
        await notifier.notify(event, { logger: capturingLogger(lines) });
      }
      await notifier.close?.();
      if (usesReceiver) expect(receiver.requests.length).toBeGreaterThan(before);
      for (const secret of secrets) expect(lines.join('\n')).not.toContain(secret);
    });

    for (const mode of ['bad-request', 'server-error'] as const) {
      it(`keeps its secrets out of errors and log lines when the destination answers ${mode === 'bad-request' ? 400 : 500}`, async () => {
        receiver.mode = mode;
        const before = receiver.requests.length;
        const notifier = await make();
        const lines: string[] = [];
        let thrown: unknown;
        try {
          await notifier.notify(alert, { logger: capturingLogger(lines) });
        } catch (err) {
          thrown = err;
        }
        receiver.mode = 'ok';
        if (usesReceiver) {
          expect(receiver.requests.length).toBeGreaterThan(before);
          expect(thrown, 'a failed delivery must be reported by throwing').toBeInstanceOf(Error);
        }
        const everything = `${exposed(thrown)}\n${lines.join('\n')}`;
        for (const secret of secrets) expect(everything).not.toContain(secret);
      });
    }

    it('rejects at once when its AbortSignal is already aborted, sending nothing', async () => {
      receiver.mode = 'ok';
      const before = receiver.requests.length;
      const notifier = await make();
      const controller = new AbortController();
      controller.abort(new Error('cancelled by the test'));
      await expect(notifier.notify(alert, { signal: controller.signal })).rejects.toBeInstanceOf(Error);
      expect(receiver.requests.length).toBe(before);
    });

    if (usesReceiver) {
      it('stops waiting for a destination that never answers when its AbortSignal fires', async () => {
        receiver.mode = 'hang';
        const before = receiver.requests.length;
        const notifier = await make();
        const controller = new AbortController();
        const delivery = notifier.notify(alert, { signal: controller.signal }).then(
          () => 'resolved',
          () => 'rejected',
        );
        await waitFor(() => receiver.requests.length > before, 5000, 'the request to reach the receiver');
        const abortedAt = performance.now();
        controller.abort(new Error('cancelled by the test'));
        let deadline: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([
          delivery,
          new Promise<string>((resolve) => {
            deadline = setTimeout(
              () => resolve(`still pending ${abortWithinMs} ms after the abort`),
              abortWithinMs,
            );
          }),
        ]);
        clearTimeout(deadline);
        expect(outcome).toBe('rejected');
        expect(performance.now() - abortedAt).toBeLessThan(abortWithinMs);
        receiver.mode = 'ok';
      });
    }
  });
}
