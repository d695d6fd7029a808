import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { rocksdbBackup } from '@codegraph/backup-rocksdb';
import { sanitizeForTerminal } from '@codegraph/release-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, project, requireBuilt } from './helpers.js';

beforeAll(requireBuilt);
const run = promisify(execFile);

describe('backup list shows manifest text safely', () => {
  it('escapes control characters a manifest carries, and lists a damaged backup as DAMAGED', async () => {
    const p = await project({
      imports: "import { rocksdbBackup } from '@codegraph/backup-rocksdb';",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: TypeScript source of the generated config
      extra: 'backup: rocksdbBackup({ repository: `${stateDir}/backups`, db: `${stateDir}/../db` }),',
    });
    const db = join(p.dir, 'db');
    await run('ldb', [`--db=${db}`, '--create_if_missing', 'batchput', 'repo:codegraph', 'indexed']).catch(
      (err: Error) => {
        throw new Error(
          `ldb failed (install rocksdb-tools: bash scripts/install-test-deps.sh): ${err.message}`,
        );
      },
    );
    const repository = join(p.stateDir, 'backups');
    // Whoever writes a manifest chooses its text: a version that would clear the screen and retitle it.
    const hostile = 'v1\u001b[2J\u001b]0;owned\u0007\r\u202e';
    const api = rocksdbBackup({ repository, db });
    const info = await api.create({ reason: 'manual', version: hostile });

    const list = await cli(['backup', 'list'], p.dir);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(info.id);
    const controls = [...list.stdout].filter(
      (c) => c !== '\n' && (c < ' ' || c === '\u001b' || c === '\u202e'),
    );
    expect(controls).toEqual([]);
    expect(list.stdout).toContain(sanitizeForTerminal(hostile));
    expect(sanitizeForTerminal(hostile)).toBe('v1\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\u{d}\\u{202e}');

    const manifest = join(repository, 'backups', info.id, 'manifest.json');
    await writeFile(manifest, (await readFile(manifest, 'utf8')).replace('"files"', '"filez"'));
    const damaged = await cli(['backup', 'list'], p.dir);
    expect(damaged.code).toBe(0);
    expect(damaged.stdout).toMatch(new RegExp(`^${info.id}  \\S+  DAMAGED: .*not a backup manifest`, 'm'));
  });
});
