import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, lastJson, project, requireBuilt, startCli } from './helpers.js';

beforeAll(requireBuilt);
const run = promisify(execFile);

/** A project backing up a real RocksDB database, with a canary that waits at 50 % (holding the lock). */
async function recoverProject() {
  const p = await project({
    imports:
      "import { rocksdbBackup } from '@codegraph/backup-rocksdb';\nimport { canary } from '@codegraph/strategy-canary';",
    extra:
      // biome-ignore lint/suspicious/noTemplateCurlyInString: TypeScript source of the generated config
      'backup: rocksdbBackup({ repository: `${stateDir}/backups`, db: `${stateDir}/../db` }),\n  strategies: { canary: canary({ weights: [50], pause: {} }) },',
  });
  const db = join(p.dir, 'db');
  await run('ldb', [`--db=${db}`, '--create_if_missing', 'batchput', 'repo:codegraph', 'indexed']).catch(
    (err: Error) => {
      throw new Error(
        `ldb failed (install rocksdb-tools: bash scripts/install-test-deps.sh): ${err.message}`,
      );
    },
  );
  return { ...p, db };
}

/** `name -> sha256` of every file in the project's data directory, and the names beside it. */
async function snapshot(dir: string, db: string) {
  const files: Record<string, string> = {};
  for (const name of (await readdir(db)).sort()) {
    files[name] = createHash('sha256')
      .update(await readFile(join(db, name)))
      .digest('hex');
  }
  return { files, siblings: (await readdir(dir)).sort() };
}

type Created = { backup: { id: string } };

describe('recover and backup restore from the command line', () => {
  it('exit 3 and change nothing while a deploy holds the environment’s lock', async () => {
    const p = await recoverProject();
    const { id } = lastJson<Created>((await cli(['backup', 'create', '--json'], p.dir)).stdout).backup;
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    const deploy = startCli(['deploy', 'v2', '--strategy', 'canary'], p.dir);
    await deploy.waitFor(/pause until approved/);
    await run('ldb', [`--db=${p.db}`, 'put', 'repo:codegraph', 'written-after-the-backup']);
    const before = await snapshot(p.dir, p.db);

    const recover = await cli(['recover', '--backup', id, '--confirm', 'CONFIRM'], p.dir);
    expect(recover.code).toBe(3);
    expect(recover.stderr).toMatch(/^codegraph-release: CG_ENVIRONMENT_LOCKED: /m);

    const restore = await cli(['backup', 'restore', '--id', id, '--confirm', 'CONFIRM'], p.dir);
    expect(restore.code).toBe(3);
    expect(restore.stderr).toMatch(/^codegraph-release: CG_ENVIRONMENT_LOCKED: /m);

    expect(await snapshot(p.dir, p.db)).toEqual(before);
    const { stdout } = await run('ldb', [`--db=${p.db}`, 'get', 'repo:codegraph']);
    expect(stdout.trim()).toBe('written-after-the-backup');
    // The deploy was not disturbed: it still waits for approval at 50 %.
    expect((await cli(['status'], p.dir)).stdout).toMatch(/weight 50%/);
    expect(deploy.child.exitCode).toBeNull();
  });

  it('refuses without --confirm CONFIRM or with both --backup and --at, before loading anything', async () => {
    const p = await recoverProject();
    const unconfirmed = await cli(['recover', '--backup', 'x'], p.dir);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(/^codegraph-release: CG_RECOVERY_UNCONFIRMED: /);
    const both = await cli(
      ['recover', '--backup', 'x', '--at', '2026-01-01T00:00:00Z', '--confirm', 'CONFIRM'],
      p.dir,
    );
    expect(both.code).toBe(2);
    const missing = await cli(['recover', '--backup', 'no-such-backup', '--confirm', 'CONFIRM'], p.dir);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/CG_BACKUP_NOT_FOUND/);
  });

  it('recovers a serving environment: stop, move aside, restore, start, verify; backup restore takes the same path', async () => {
    const p = await recoverProject();
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    const { id } = lastJson<Created>((await cli(['backup', 'create', '--json'], p.dir)).stdout).backup;
    await run('ldb', [`--db=${p.db}`, 'put', 'repo:codegraph', 'damaged-by-a-bad-import']);

    const r = await cli(['recover', '--backup', id, '--confirm', 'CONFIRM', '--reason', 'bad import'], p.dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/succeeded: v1 released and verified in staging/);
    expect((await run('ldb', [`--db=${p.db}`, 'get', 'repo:codegraph'])).stdout.trim()).toBe('indexed');
    expect((await readdir(p.dir)).some((n) => n.startsWith('db.pre-recovery.'))).toBe(true);
    expect((await cli(['status'], p.dir)).stdout).toMatch(/serving v1/);

    await run('ldb', [`--db=${p.db}`, 'put', 'repo:codegraph', 'damaged-again']);
    const viaBackup = await cli(
      ['backup', 'restore', '--at', new Date().toISOString(), '--confirm', 'CONFIRM'],
      p.dir,
    );
    expect(viaBackup.code).toBe(0);
    expect(viaBackup.stdout).toMatch(/restoring through a recovery/);
    expect((await run('ldb', [`--db=${p.db}`, 'get', 'repo:codegraph'])).stdout.trim()).toBe('indexed');
    const history = await cli(['history'], p.dir);
    expect(history.stdout.match(/recovery/g)?.length).toBeGreaterThanOrEqual(2);
  });
});
