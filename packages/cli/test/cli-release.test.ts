import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bin, cli, jsonLines, lastJson, project, requireBuilt, sample } from './helpers.js';

beforeAll(requireBuilt);

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

describe('deploy, status, history and the emergency rollback on the local target', () => {
  it('releases v1 and v2, then rolls v3 back automatically when half its searches fail (exit 1)', async () => {
    const p = await project({ faults: { v3: { FAULT_ERROR_RATE: '0.5' } } });
    const v1 = await cli(['deploy', 'v1'], p.dir);
    expect(v1.stderr).toBe('');
    expect(v1.code).toBe(0);
    expect(v1.stdout).toMatch(/^\[staging\] release v1: run staging-/m);
    expect(v1.stdout).toMatch(/^succeeded: v1 released and verified in staging, v1 serves/m);

    const v2 = await cli(['deploy', 'v2', '--reason', 'weekly release'], p.dir);
    expect(v2.code).toBe(0);
    expect(v2.stdout).toContain('route v1=50% v2=50%');

    const v3 = await cli(['deploy', 'v3'], p.dir);
    expect(v3.code).toBe(1);
    expect(v3.stdout).toMatch(/analysis batch-1: FAIL/);
    expect(v3.stdout).toMatch(/fail concurrency\.errors: observed \d+/);
    expect(v3.stdout).toMatch(/phase undo/);
    expect(v3.stdout).toMatch(/^rolled back: v3 was undone, v2 serves/m);
    expect(v3.stderr).toMatch(
      /^codegraph-release: CG_ANALYSIS_FAILED: rolled-back: analysis batch-1 ended fail/,
    );

    const status = await cli(['status'], p.dir);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^\[staging\] serving v2 at http:\/\/127\.0\.0\.1:\d+$/m);
    expect(status.stdout).toMatch(/pool v2: v2, 1\/1 ready, weight 100%/);
    expect(status.stdout).not.toMatch(/pool v3/);

    // The endpoint status names really serves v2.
    const { endpoint } = lastJson<{ status: { endpoint: string } }>(
      (await cli(['status', '--json'], p.dir)).stdout,
    ).status;
    const health = (await (await fetch(`${endpoint}/health`)).json()) as { version: string };
    expect(health.version).toBe('v2');

    const history = await cli(['history', '--json'], p.dir);
    expect(history.code).toBe(0);
    const result = lastJson<{ history: Array<{ version: string; status: string }> }>(history.stdout);
    expect(result.history.map((h) => `${h.version}:${h.status}`)).toEqual([
      'v1:succeeded',
      'v2:succeeded',
      'v3:rolled-back',
    ]);
  });

  it('plans a release without changing anything', async () => {
    const p = await project();
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    const plan = await cli(['plan', 'v2'], p.dir);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('[staging] plan: rolling release of v2 from v1, 1 replica(s)');
    expect(plan.stdout).toMatch(/1\. provision v2 = v2 x1/);
    const status = await cli(['status', '--json'], p.dir);
    const s = lastJson<{ status: { pools: Array<{ name: string }> } }>(status.stdout).status;
    expect(s.pools.map((x) => x.name)).toEqual(['v1']);
  });

  it('runs the emergency rollback only with CONFIRM and a known-good version, and reports the incident', async () => {
    const p = await project();
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    expect((await cli(['deploy', 'v2'], p.dir)).code).toBe(0);

    const unknown = await cli(
      ['rollback', '--to', 'v0', '--confirm', 'CONFIRM', '--reason', 'regression'],
      p.dir,
    );
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toMatch(
      /^codegraph-release: CG_VERSION_UNKNOWN: version v0 is not known .*\(known: v1, v2\)/,
    );

    const r = await cli(
      [
        'rollback',
        '--to',
        'v1',
        '--confirm',
        'CONFIRM',
        '--reason',
        'Critical performance regression',
        '--json',
      ],
      p.dir,
    );
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    const phases = lines.filter((l) => l.type === 'phase.started').map((l) => l.phase);
    expect(phases).toEqual(['preflight', 'backup', 'undo', 'verify']);
    const result = lastJson<{
      type: string;
      exitCode: number;
      result: { status: string; serving: string; incident: { reason: string; from: string; to: string } };
    }>(r.stdout);
    expect(result).toMatchObject({ type: 'result', exitCode: 0 });
    expect(result.result).toMatchObject({ status: 'succeeded', serving: 'v1' });
    expect(result.result.incident).toMatchObject({
      reason: 'Critical performance regression',
      from: 'v2',
      to: 'v1',
    });
    const status = await cli(['status'], p.dir);
    expect(status.stdout).toMatch(/^\[staging\] serving v1 at http:\/\/127\.0\.0\.1:\d+$/m);
  });

  it('prints one JSON event per line then the result, and never prints the API key or the webhook URL, even with --verbose', async () => {
    const apiKey = 'sk-live-0123456789abcdef';
    const hookPath = '/hooks/T000-SECRET-PATH-42';
    const received: string[] = [];
    const receiver = createServer((req, res) => {
      req.resume();
      received.push(req.url ?? '');
      res.statusCode = 500; // every delivery fails, echoing the secret path as some servers do
      res.end(`no hook at ${req.url}`);
    });
    servers.push(receiver);
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}${hookPath}`;
    const p = await project({
      faults: { v1: { API_KEY: apiKey }, v2: { API_KEY: apiKey, FAULT_ERROR_RATE: '0.5' } },
      imports: "import { webhook } from '@codegraph/notify';",
      extra: `verifiers: [httpValidation({ apiKey: process.env.API_KEY, authPath: '/api/v1/protected', loadPath: '/api/v1/search?q=graph', loadRequests: 40, latencySamples: 5 })],
  notifiers: [webhook({ url: process.env.WEBHOOK_URL!, secret: 'signing-secret-0123456789', retries: 0 })],
  delivery: { timeoutMs: 2000 },
  secrets: [process.env.WEBHOOK_URL!],`,
    });
    const env = { API_KEY: apiKey, WEBHOOK_URL: webhookUrl };
    const ok = await cli(['deploy', 'v1', '--json', '--verbose'], p.dir, env);
    expect(ok.code).toBe(0);
    const lines = jsonLines(ok.stdout);
    expect(lines[0]).toMatchObject({ type: 'run.started', version: 'v1' });
    expect(lines.some((l) => l.type === 'analysis.finished')).toBe(true);
    expect(lines.at(-1)).toMatchObject({
      type: 'result',
      command: 'deploy',
      exitCode: 0,
      result: { status: 'succeeded' },
    });
    const bad = await cli(['deploy', 'v2', '--json', '--verbose'], p.dir, env);
    expect(bad.code).toBe(1);
    expect(jsonLines(bad.stdout).some((l) => l.type === 'notification.failed')).toBe(true);
    // The receiver echoes the hook's path in its error body, so the failure message carried it: it must show redacted.
    expect(bad.stdout).toMatch(/\[redacted\]/i);
    expect(received.length).toBeGreaterThan(0); // the notifier really ran
    expect(ok.stderr.length + bad.stderr.length).toBeGreaterThan(0); // --verbose logged something
    const plain = await cli(['deploy', 'v2', '--verbose'], p.dir, env);
    expect(plain.code).toBe(1);
    expect(plain.stdout).toMatch(/notification run\.started to webhook failed: .*\[redacted\]/i);
    for (const text of [ok.stdout, ok.stderr, bad.stdout, bad.stderr, plain.stdout, plain.stderr]) {
      expect(text).not.toContain(apiKey);
      expect(text).not.toContain('T000-SECRET-PATH-42');
      expect(text).not.toContain('signing-secret-0123456789');
    }
  });

  it('writes the release report (HTML, Markdown, recording) of a rolled-back release with --report', async () => {
    const p = await project({ faults: { v2: { FAULT_ERROR_RATE: '0.5' } } });
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    const r = await cli(['deploy', 'v2', '--report', 'reports', '--json'], p.dir);
    expect(r.code).toBe(1);
    const { report, result } = lastJson<{ report: string; result: { runId: string } }>(r.stdout);
    expect(report).toBe(join(p.dir, 'reports', `${result.runId}.html`));
    const html = await readFile(report, 'utf8');
    expect(html).toContain('v2');
    const md = await readFile(join(p.dir, 'reports', `${result.runId}.md`), 'utf8');
    expect(md).toMatch(/rolled.back/i);
    const recording = JSON.parse(await readFile(join(p.dir, 'reports', `${result.runId}.json`), 'utf8')) as {
      runId: string;
      status: string;
    };
    expect(recording).toMatchObject({ runId: result.runId, status: 'rolled-back' });
  });

  it('shows phases with their durations and the traffic split as bars on a terminal', async () => {
    const p = await project();
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    const tty = await new Promise<string>((resolve, reject) =>
      execFile(
        'script',
        ['-qec', `"${process.execPath}" "${bin}" deploy v2`, '/dev/null'],
        { cwd: p.dir, env: { ...process.env, NO_COLOR: '1' } },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    );
    expect(tty).toMatch(/phase deploy done in \d+\.\ds/);
    expect(tty).toMatch(/traffic █+ v1 50% █+ v2 50%/);
    expect(tty).toMatch(/succeeded: v2 released and verified/);
  });

  it('releases from a release.config.json with {node} and {port} placeholders', async () => {
    const p = await project();
    await rm(join(p.dir, 'release.config.ts'));
    await writeFile(
      join(p.dir, 'release.config.json'),
      JSON.stringify({
        environments: {
          staging: {
            target: {
              type: 'local',
              stateDir: '.codegraph-release/local-staging',
              command: '{node}',
              args: [sample, '--port', '{port}', '--version', '{version}'],
            },
            strategy: { type: 'rolling', maxSurge: 1, maxUnavailable: 0 },
            verifiers: [{ type: 'httpValidation', loadRequests: 20, latencySamples: 3 }],
            replicas: 1,
          },
        },
      }),
    );
    const r = await cli(['deploy', 'v1'], p.dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((await cli(['status'], p.dir)).stdout).toMatch(/serving v1/);
  });
});
