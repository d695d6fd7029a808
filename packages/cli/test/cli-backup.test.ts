import { execFile } from 'node:child_process';
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { bin, cli, lastJson, project, requireBuilt } from './helpers.js';

beforeAll(requireBuilt);
const run = promisify(execFile);

/** A project whose environment backs up a real RocksDB database (written by Debian's ldb). */
async function backupProject() {
  const p = await project({
    imports: "import { rocksdbBackup } from '@codegraph/backup-rocksdb';",
    extra:
      // biome-ignore lint/suspicious/noTemplateCurlyInString: TypeScript source of the generated config
      'backup: rocksdbBackup({ repository: `${stateDir}/backups`, db: `${stateDir}/../db`, onProgress: backupProgress }),',
  });
  const db = join(p.dir, 'db');
  await run('ldb', [
    `--db=${db}`,
    '--create_if_missing',
    'batchput',
    'repo:codegraph',
    'indexed',
    'files',
    '1200',
  ]).catch((err: Error) => {
    throw new Error(`ldb failed (install rocksdb-tools: bash scripts/install-test-deps.sh): ${err.message}`);
  });
  return { ...p, db, repository: join(p.stateDir, 'backups') };
}

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await allFiles(path)));
    else out.push(path);
  }
  return out;
}

type Created = { backup: { id: string; files: number } };

describe('backup create, list, verify, restore and prune use the environment’s backup provider', () => {
  it('takes and lists a backup, verifies it, and reports a flipped byte in the repository as corrupt (exit 1)', async () => {
    const p = await backupProject();
    const created = await cli(['backup', 'create', '--label', 'ticket=OPS-42', '--json'], p.dir);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const { id, files } = lastJson<Created>(created.stdout).backup;
    expect(files).toBeGreaterThan(0);

    const list = await cli(['backup', 'list'], p.dir);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^${id}  .* manual `, 'm'));

    const ok = await cli(['backup', 'verify', id], p.dir);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`OK ${id} (checksum)`);

    // Flip one byte of the largest blob (blobs are read-only: make it writable first).
    const blobs = await allFiles(join(p.repository, 'blobs'));
    const sizes = await Promise.all(blobs.map(async (b) => (await stat(b)).size));
    const blob = blobs[sizes.indexOf(Math.max(...sizes))]!;
    const bytes = await readFile(blob);
    bytes[bytes.length >> 1]! ^= 0xff;
    await chmod(blob, 0o600);
    await writeFile(blob, bytes);

    const bad = await cli(['backup', 'verify', '--all'], p.dir);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`CORRUPT ${id} (checksum)`);
    expect(bad.stdout).toMatch(/checksum rocksdb\//);
    expect(bad.stderr).toMatch(
      /^codegraph-release: CG_BACKUP_CORRUPT: 1 of 1 backup\(s\) failed checksum verification$/m,
    );
  });

  it('restores only with --confirm CONFIRM, says an unknown backup is not found (exit 4), and moves the old data aside', async () => {
    const p = await backupProject();
    const { id } = lastJson<Created>((await cli(['backup', 'create', '--json'], p.dir)).stdout).backup;
    await run('ldb', [`--db=${p.db}`, 'put', 'repo:codegraph', 'damaged-by-a-bad-migration']);

    const unconfirmed = await cli(['backup', 'restore', '--id', id], p.dir);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(
      /^codegraph-release: CG_CONFIG_INVALID: backup restore replaces the database: pass --confirm CONFIRM/,
    );

    const missing = await cli(['backup', 'restore', '--id', 'no-such-backup', '--confirm', 'CONFIRM'], p.dir);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/^codegraph-release: CG_BACKUP_NOT_FOUND: /);

    const restored = await cli(['backup', 'restore', '--id', id, '--confirm', 'CONFIRM'], p.dir);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expect(restored.stdout).toMatch(new RegExp(`restored ${id}; the previous data was moved to `));
    const { stdout } = await run('ldb', [`--db=${p.db}`, 'get', 'repo:codegraph']);
    expect(stdout.trim()).toBe('indexed');
  });

  it('prunes to the newest backups it is told to keep, and refuses to prune without a rule', async () => {
    const p = await backupProject();
    const first = lastJson<Created>((await cli(['backup', 'create', '--json'], p.dir)).stdout).backup.id;
    const second = lastJson<Created>(
      (await cli(['backup', 'create', '--reason', 'scheduled', '--json'], p.dir)).stdout,
    ).backup.id;
    const noRule = await cli(['backup', 'prune'], p.dir);
    expect(noRule.code).toBe(2);
    const pruned = await cli(['backup', 'prune', '--keep-last', '1'], p.dir);
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toContain(`removed ${first}`);
    expect(pruned.stdout).toMatch(/^1 removed, 1 kept/m);
    const list = await cli(['backup', 'list'], p.dir);
    expect(list.stdout).toContain(second);
    expect(list.stdout).not.toContain(first);
  });

  it('takes a pre-release backup before every deploy and names it in the output', async () => {
    const p = await backupProject();
    const r = await cli(['deploy', 'v1'], p.dir);
    expect(r.code).toBe(0);
    const id = /backup (\S+) taken by rocksdb/.exec(r.stdout)?.[1];
    expect(id).toBeDefined();
    const list = await cli(['backup', 'list'], p.dir);
    expect(list.stdout).toMatch(new RegExp(`^${id}  .* pre-release `, 'm'));
  });

  it('shows the files being backed up and a verification progress bar on a terminal', async () => {
    const p = await backupProject();
    // `script` gives the CLI a pseudo-terminal, as an operator's shell would.
    const tty = (args: string) =>
      run('script', ['-qec', `"${process.execPath}" "${bin}" ${args}`, '/dev/null'], {
        cwd: p.dir,
        env: { ...process.env, NO_COLOR: '1' },
      });
    const created = await tty('backup create');
    expect(created.stdout).toMatch(/backing up: 1 file\(s\), [\d.]+ MB, rocksdb\//);
    await tty('backup create');
    const verified = await tty('backup verify --all');
    expect(verified.stdout).toMatch(/verifying [█░]{24} 1\/2 /);
    expect(verified.stdout).toMatch(/2 backup\(s\) verified, 0 corrupt/);
  });

  it('says an environment without a backup provider cannot back up (exit 2)', async () => {
    const p = await project();
    const r = await cli(['backup', 'list'], p.dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^codegraph-release: CG_CONFIG_INVALID: environment staging has no backup provider/,
    );
  });
});
