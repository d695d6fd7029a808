import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ldbCheckpoint, rocksdbBackup } from '@codegraph/backup-rocksdb';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type BackupInfo,
  createReleaseEngine,
  fileStore,
  type LocalTarget,
  localTarget,
  type ReleaseEvent,
  rolling,
  TargetOperationError,
} from '../src/index.js';
import { serviceChecks } from './helpers/release-env.js';
import { alive, processesUsing } from './helpers/sample.js';
import {
  dataVerifier,
  ldbGet,
  ldbPut,
  makeDatabase,
  scanDatabase,
  tempDirs,
  until,
} from './recovery-helpers.js';

// The runbook's full and point-in-time recovery as one engine call, on a real RocksDB database held open
// by the running service (an `ldb query` child keeps its LOCK), backed up by @codegraph/backup-rocksdb.
const replica = fileURLToPath(new URL('./fixtures/recovery-replica.mjs', import.meta.url));
const childScript = fileURLToPath(new URL('./fixtures/recovery-child.mjs', import.meta.url));
const dirs = tempDirs();
const cleanups: Array<() => Promise<void>> = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
  await dirs.cleanup();
});

const users = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`user:${i}`, `name-${i}`]));

/** The layout recovery-child.mjs uses too: data/rocksdb, data/cache, config, backups, local, store. */
async function recoveryEnv(o: { stop?: 'destroy' | 'nothing' | 'default' } = {}) {
  const dir = await dirs.make('recovery');
  const db = join(dir, 'data', 'rocksdb');
  const config = join(dir, 'config');
  await makeDatabase(db, { marker: 'b1', ...users });
  await mkdir(config, { recursive: true });
  await writeFile(join(config, 'codegraph.toml'), 'cache_mb = 512\n');
  await mkdir(join(dir, 'data', 'cache'), { recursive: true });
  await writeFile(join(dir, 'data', 'cache', 'hot.bin'), 'cached');
  const backup = rocksdbBackup({
    repository: join(dir, 'backups'),
    db,
    source: ldbCheckpoint(),
    extras: { config },
  });
  const target: LocalTarget = localTarget({
    stateDir: join(dir, 'local'),
    readyTimeoutMs: 10_000,
    stopTimeoutMs: 3_000,
    command: ({ version, port }) => ({
      command: process.execPath,
      args: [replica, db, '--port', String(port), '--version', version],
    }),
  });
  cleanups.push(async () => {
    await target.destroy();
    for (const pid of await processesUsing(dir)) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  const expected = { marker: 'b1' };
  const events: ReleaseEvent[] = [];
  const stop = o.stop ?? 'default';
  const engine = createReleaseEngine({
    environment: 'production',
    target,
    strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
    store: fileStore({ dir: join(dir, 'store') }),
    replicas: 1,
    metrics: false,
    backup,
    verifiers: [serviceChecks, dataVerifier(db, 'marker', () => expected.marker)],
    recovery: {
      ...(stop === 'destroy' ? { stop: () => target.destroy() } : {}),
      ...(stop === 'nothing' ? { stop: async () => {} } : {}),
      data: [join(dir, 'data', 'cache')],
    },
    manifestDir: join(dir, 'store', 'runs'),
  });
  engine.on('*', (e) => events.push(e));
  /** A scheduled backup after setting the marker (the service must not hold the database yet). */
  async function backupWith(marker: string): Promise<{ info: BackupInfo; scan: string }> {
    await ldbPut(db, { marker });
    const scan = await scanDatabase(db);
    return { info: await backup.create({ reason: 'scheduled' }), scan };
  }
  async function serving(): Promise<string> {
    const res = await fetch(`${await target.endpoint()}/health`);
    return ((await res.json()) as { version: string }).version;
  }
  return { dir, db, config, backup, target, engine, events, expected, backupWith, serving };
}

const phasesOf = (events: ReleaseEvent[], runId: string) =>
  events.flatMap((e) => (e.type === 'phase.started' && e.runId === runId ? [e.phase] : []));

describe('full recovery', () => {
  it('restores the database and configuration after data loss, and the service serves the restored data', async () => {
    const env = await recoveryEnv();
    const b1 = await env.backupWith('b1');
    expect((await env.engine.release({ version: 'v1' })).status).toBe('succeeded');
    // Data loss while the service runs: the SST files vanish and the configuration is overwritten.
    for (const f of await readdir(env.db)) if (f.endsWith('.sst')) await writeFile(join(env.db, f), '');
    await writeFile(join(env.config, 'codegraph.toml'), 'garbage');

    const result = await env.engine.recover({
      backup: { id: b1.info.id },
      reason: 'SST files lost',
      confirm: 'CONFIRM',
    });
    expect(result).toMatchObject({
      kind: 'recovery',
      status: 'succeeded',
      serving: 'v1',
      backupId: b1.info.id,
    });
    expect(await scanDatabase(env.db)).toBe(b1.scan);
    expect(await readFile(join(env.config, 'codegraph.toml'), 'utf8')).toBe('cache_mb = 512\n');
    expect(await env.serving()).toBe('v1');
    // Nothing is deleted: the damaged database, the overwritten config and the cache were moved aside.
    const aside = (await readdir(join(env.dir, 'data'))).filter((n) => n.includes('.pre-recovery.'));
    expect(aside.map((n) => n.split('.pre-recovery.')[0]).sort()).toEqual(['cache', 'rocksdb']);
    const configAside = (await readdir(env.dir)).find((n) => n.startsWith('config.pre-recovery.'));
    expect(await readFile(join(env.dir, configAside!, 'codegraph.toml'), 'utf8')).toBe('garbage');
    expect(phasesOf(env.events, result.runId)).toEqual([
      'preflight',
      'stop',
      'restore',
      'start',
      'verify',
      'integrity',
    ]);
    expect(result.incident).toMatchObject({
      severity: 'P1',
      to: 'v1',
      backupId: b1.info.id,
      status: 'succeeded',
    });
    // Notifiers get the same incident report on the run.finished event.
    const finished = env.events.find((e) => e.type === 'run.finished' && e.runId === result.runId);
    expect(finished).toMatchObject({ kind: 'recovery', status: 'succeeded', incident: { severity: 'P1' } });
    expect(result.incident?.actions).toEqual(
      expect.arrayContaining([`chose backup ${b1.info.id} taken ${b1.info.createdAt}`, 'service stopped']),
    );
    expect(result.analyses.map((a) => a.verdict)).toEqual(['pass']);
    const manifest = await env.engine.manifest(result.runId);
    expect(manifest.backups).toEqual([{ id: b1.info.id, role: 'restored' }]);
    expect(manifest.steps.find((s) => s.key === 'integrity')).toMatchObject({ status: 'finished' });
    expect((await env.engine.history()).at(-1)).toMatchObject({
      kind: 'recovery',
      status: 'succeeded',
      serving: 'v1',
    });
  });

  it('point-in-time: restores the newest backup taken at or before the time asked for', async () => {
    const env = await recoveryEnv();
    await env.backupWith('b1');
    const b2 = await env.backupWith('b2');
    const b3 = await env.backupWith('b3');
    expect(Date.parse(b3.info.createdAt)).toBeGreaterThan(Date.parse(b2.info.createdAt));
    env.expected.marker = 'b3';
    expect((await env.engine.release({ version: 'v1' })).status).toBe('succeeded');
    env.expected.marker = 'b2';
    const at = new Date(Date.parse(b3.info.createdAt) - 1);
    const result = await env.engine.recover({
      backup: { at },
      reason: 'bad import at 14:02',
      confirm: 'CONFIRM',
    });
    expect(result).toMatchObject({ status: 'succeeded', backupId: b2.info.id });
    expect(await ldbGet(env.db, 'marker')).toBe('b2');
    expect(await scanDatabase(env.db)).toBe(b2.scan);
  });

  it('refuses bad requests before anything changes', async () => {
    const env = await recoveryEnv();
    const b1 = await env.backupWith('b1');
    await env.engine.release({ version: 'v1' });
    const before = await scanDatabase(env.db);
    const runs = (await env.engine.status()).lastRun;
    const early = new Date(Date.parse(b1.info.createdAt) - 60_000);
    const bad = [
      [{ backup: { id: b1.info.id }, reason: 'x', confirm: 'yes' }, 'CG_RECOVERY_UNCONFIRMED'],
      [{ backup: { id: 'nope' }, reason: 'x', confirm: 'CONFIRM' }, 'CG_BACKUP_NOT_FOUND'],
      [{ backup: { at: early }, reason: 'x', confirm: 'CONFIRM' }, 'CG_BACKUP_NOT_FOUND'],
      [{ backup: { at: 'yesterday-ish' }, reason: 'x', confirm: 'CONFIRM' }, 'CG_CONFIG_INVALID'],
      [{ backup: { id: b1.info.id, at: early }, reason: 'x', confirm: 'CONFIRM' }, 'CG_CONFIG_INVALID'],
      [{ backup: { id: b1.info.id }, reason: ' ', confirm: 'CONFIRM' }, 'CG_CONFIG_INVALID'],
    ] as const;
    for (const [options, code] of bad) {
      await expect(env.engine.recover(options as never)).rejects.toMatchObject({ code });
    }
    expect((await env.engine.status()).lastRun).toEqual(runs);
    expect(await scanDatabase(env.db)).toBe(before);
    expect(await env.serving()).toBe('v1');
  });

  it('fails safely when the service still holds the database: the restore is refused and the data stays', async () => {
    const env = await recoveryEnv({ stop: 'nothing' });
    const b1 = await env.backupWith('b1');
    await env.engine.release({ version: 'v1' });
    const before = await scanDatabase(env.db);
    const result = await env.engine.recover({
      backup: { id: b1.info.id },
      reason: 'drill',
      confirm: 'CONFIRM',
    });
    expect(result.status).toBe('failed');
    expect(result.error?.message).toMatch(/holds .*LOCK/);
    expect(result.incident).toMatchObject({ severity: 'P0' });
    expect(await scanDatabase(env.db)).toBe(before);
    expect(
      (await readdir(join(env.dir, 'data'))).filter((n) => n.startsWith('rocksdb.pre-recovery')),
    ).toEqual([]);
  });

  it('stops through the target by default: traffic drains (503), replicas stop, and the front keeps its address', async () => {
    const env = await recoveryEnv({ stop: 'default' });
    const b1 = await env.backupWith('b1');
    expect((await env.engine.release({ version: 'v1' })).status).toBe('succeeded');
    const front = await env.target.endpoint();
    const weights: Array<Record<string, number>> = [];
    env.engine.on('traffic.shifted', (e) => weights.push(e.weights));
    const result = await env.engine.recover({
      backup: { id: b1.info.id },
      reason: 'drill',
      confirm: 'CONFIRM',
    });
    expect(result).toMatchObject({ kind: 'recovery', status: 'succeeded', serving: 'v1' });
    // Maintenance first, then all traffic back on the restarted pool.
    expect(weights).toEqual([{}, { v1: 100 }]);
    expect(await env.target.endpoint()).toBe(front);
    expect(await env.serving()).toBe('v1');
    expect(await scanDatabase(env.db)).toBe(b1.scan);
  });

  it('leaves the data untouched when the stop fails', async () => {
    const env = await recoveryEnv({ stop: 'default' });
    const b1 = await env.backupWith('b1');
    expect((await env.engine.release({ version: 'v1' })).status).toBe('succeeded');
    const before = await scanDatabase(env.db);
    // The replicas' pool is gone from under the engine: stopping through the target now fails, typed.
    const broken = createReleaseEngine({
      environment: 'production',
      target: {
        ...env.target,
        name: 'broken',
        route: async () => {
          throw new TargetOperationError('load balancer refused');
        },
      },
      strategy: rolling(),
      store: fileStore({ dir: join(env.dir, 'store') }),
      backup: env.backup,
      metrics: false,
      retry: { retries: 0 },
    });
    const result = await broken.recover({ backup: { id: b1.info.id }, reason: 'drill', confirm: 'CONFIRM' });
    expect(result).toMatchObject({ status: 'failed', error: { code: 'CG_TARGET_FAILED' } });
    expect(await scanDatabase(env.db)).toBe(before);
    expect(await env.serving()).toBe('v1');
  });
});

function runChild(dir: string, verb: 'recover' | 'resume', arg: string) {
  const proc = spawn(process.execPath, [childScript, dir, verb, arg], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    proc.once('exit', (code) => resolve({ code, out, err })),
  );
  return { proc, exited };
}

async function recoveryJournal(dir: string) {
  const runs = join(dir, 'store', 'runs');
  for (const f of (await readdir(runs).catch(() => [] as string[])).filter((n) => n.endsWith('.jsonl'))) {
    const lines = (await readFile(join(runs, f), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; key?: string; header?: { runId: string; kind: string } });
    if (lines[0]?.header?.kind === 'recovery') return { runId: lines[0].header.runId, lines };
  }
  return undefined;
}

describe('a recovery killed half-way', () => {
  it.each(['stop', 'restore', 'start/provision', 'verify'])(
    'resumes after a kill at %s to the same end state as an uninterrupted recovery',
    async (key) => {
      const env = await recoveryEnv();
      const b1 = await env.backupWith('b1');
      const b2 = await env.backupWith('b2');
      env.expected.marker = 'b2';
      expect((await env.engine.release({ version: 'v1' })).status).toBe('succeeded');
      const { proc, exited } = runChild(env.dir, 'recover', b1.info.id);
      let runId = '';
      await until(
        async () => {
          if (proc.exitCode !== null) throw new Error(`child ended before ${key}: ${(await exited).err}`);
          const j = await recoveryJournal(env.dir);
          runId = j?.runId ?? '';
          return j?.lines.some((l) => l.type === 'step-started' && l.key === key) ?? false;
        },
        30_000,
        `the recovery journal reaching ${key}`,
      );
      proc.kill('SIGKILL');
      await exited;
      expect((await env.engine.status()).interrupted.map((r) => r.runId)).toEqual([runId]);
      await expect(env.engine.release({ version: 'v2' })).rejects.toMatchObject({
        code: 'CG_RUN_INTERRUPTED',
      });

      env.expected.marker = 'b1';
      const result = await env.engine.resume(runId);
      expect(result.status, JSON.stringify(result.error)).toBe('succeeded');
      expect(result).toMatchObject({
        runId,
        kind: 'recovery',
        status: 'succeeded',
        serving: 'v1',
        backupId: b1.info.id,
      });
      // The same end state as the uninterrupted recovery: the backup's data, one verified pool, all traffic.
      expect(await scanDatabase(env.db)).toBe(b1.scan);
      expect(await readFile(join(env.config, 'codegraph.toml'), 'utf8')).toBe('cache_mb = 512\n');
      const pools = (await env.target.describe()).pools;
      expect(pools.map((p) => [p.version, p.weight, p.ready])).toEqual([['v1', 100, 1]]);
      expect(await env.serving()).toBe('v1');
      // The data that was there before is kept, moved aside once per move.
      const aside = (await readdir(join(env.dir, 'data'))).filter((n) => n.startsWith('cache.pre-recovery.'));
      expect(aside).toHaveLength(1);
      // The database that served before the recovery (b2's data) is among what was moved aside.
      const asideDbs = (await readdir(join(env.dir, 'data'))).filter((n) =>
        n.startsWith('rocksdb.pre-recovery.'),
      );
      const scans = await Promise.all(asideDbs.map((n) => scanDatabase(join(env.dir, 'data', n))));
      expect(scans).toContain(b2.scan);
      expect((await env.engine.history()).filter((h) => h.kind === 'recovery')).toHaveLength(1);
      expect((await env.engine.manifest(runId)).status).toBe('succeeded');
    },
  );
});
