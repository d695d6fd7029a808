import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createReleaseEngine,
  fileStore,
  localTarget,
  type ReleaseEvent,
  rolling,
} from '@codegraph/release-core';
import { sampleReleaseEvents, testNotifier } from '@codegraph/release-core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { type AuditRecord, auditLog, verifyAuditLog } from '../src/index.js';

const dirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'acme-audit-'));
  dirs.push(dir);
  return dir;
};
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});
const signingKey = 'audit-key-3f7c9a1e5b2d4f60';

// The same conformance suite the SDK's own notifiers pass.
testNotifier({
  name: 'audit-log',
  usesReceiver: false,
  create: async () => auditLog({ file: join(await tempDir(), 'audit.jsonl'), signingKey }),
  secrets: () => [signingKey],
});

describe('audit log', () => {
  it('chains every event, and continues the chain from a file another process wrote', async () => {
    const file = join(await tempDir(), 'releases.jsonl');
    const events = sampleReleaseEvents();
    const first = auditLog({ file, signingKey });
    await Promise.all(events.slice(0, 3).map((e) => first.notify(e)));
    await first.close();
    const second = auditLog({ file, signingKey });
    for (const e of events.slice(3)) await second.notify(e);
    const records = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditRecord);
    expect(records.map((r) => r.seq)).toEqual(events.map((_, i) => i + 1));
    expect(records.map((r) => r.event)).toEqual(events);
    expect(await verifyAuditLog(file, signingKey)).toEqual({ ok: true, records: events.length });
    expect(await readFile(file, 'utf8')).not.toContain(signingKey);
  });

  it('catches an edited line, a dropped line and a wrong key', async () => {
    const file = join(await tempDir(), 'releases.jsonl');
    const log = auditLog({ file, signingKey });
    for (const e of sampleReleaseEvents().slice(0, 4)) await log.notify(e);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    const edited = lines.map((l, i) =>
      i === 1 ? l.replace('"environment":"production"', '"environment":"staging"') : l,
    );
    expect(edited[1]).not.toBe(lines[1]);
    await writeFile(file, `${edited.join('\n')}\n`);
    expect(await verifyAuditLog(file, signingKey)).toMatchObject({ ok: false, problem: { line: 2 } });
    await writeFile(file, `${lines.filter((_, i) => i !== 2).join('\n')}\n`);
    expect(await verifyAuditLog(file, signingKey)).toMatchObject({ ok: false, problem: { line: 3 } });
    await writeFile(file, `${lines.join('\n')}\n`);
    expect(await verifyAuditLog(file, 'another-key-0123456789')).toMatchObject({
      ok: false,
      problem: { line: 1, reason: 'MAC does not match' },
    });
  });

  it('refuses a short signing key before anything is written', () => {
    expect(() => auditLog({ file: '/tmp/never.jsonl', signingKey: 'short' })).toThrow(
      expect.objectContaining({ code: 'CG_CONFIG_INVALID' }),
    );
  });

  it('records a real release of the sample service, from run.started to run.finished', async () => {
    const dir = await tempDir();
    const sample = fileURLToPath(new URL('../../sample-service/server.mjs', import.meta.url));
    const target = localTarget({
      stateDir: join(dir, 'local'),
      readyTimeoutMs: 10_000,
      command: ({ version, port }) => ({
        command: process.execPath,
        args: [sample, '--port', String(port), '--version', version],
      }),
    });
    const file = join(dir, 'audit.jsonl');
    const engine = createReleaseEngine({
      environment: 'staging',
      target,
      strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
      store: fileStore({ dir: join(dir, 'store') }),
      notifiers: [auditLog({ file, signingKey })],
      replicas: 1,
      metrics: false,
    });
    try {
      const result = await engine.release({ version: 'v1' });
      await engine.close();
      expect(result.status).toBe('succeeded');
    } finally {
      await target.destroy();
    }
    const events = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as AuditRecord).event as ReleaseEvent);
    expect(events[0]?.type).toBe('run.started');
    expect(events.at(-1)).toMatchObject({ type: 'run.finished', status: 'succeeded', serving: 'v1' });
    expect((await verifyAuditLog(file, signingKey)).ok).toBe(true);
  });
});
