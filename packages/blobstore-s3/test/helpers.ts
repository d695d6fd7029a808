import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Logger } from '@codegraph/release-core';
import { afterAll } from 'vitest';

const HINT = 'run `bash scripts/install-test-deps.sh` (or `apt-get install rocksdb-tools`)';

export function run(command: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT')
        reject(new Error(`${command} is not installed: ${HINT}`));
      else if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Temporary directories removed after the file's tests, whatever happened. */
export function tempDirs(): (label?: string) => Promise<string> {
  const made: string[] = [];
  afterAll(async () => {
    for (const dir of made) await rm(dir, { recursive: true, force: true });
  });
  return async (label = 'test') => {
    const dir = await mkdtemp(join(tmpdir(), `cg-s3-${label}-`));
    made.push(dir);
    return dir;
  };
}

/** A small real RocksDB database in several SST files, written by db_bench; `writes` adds to an existing one. */
export async function fillDatabase(db: string, options: { num: number; seed: number; writes?: number }) {
  const existing = options.writes !== undefined;
  await mkdir(dirname(db), { recursive: true });
  await run('db_bench', [
    `--benchmarks=${existing ? 'overwrite' : 'fillrandom'}`,
    `--db=${db}`,
    `--num=${options.num}`,
    ...(existing ? [`--writes=${options.writes}`, '--disable_auto_compactions=1'] : []),
    '--value_size=100',
    '--compression_type=none',
    '--write_buffer_size=262144',
    '--target_file_size_base=262144',
    `--seed=${options.seed}`,
    `--use_existing_db=${existing ? 1 : 0}`,
  ]);
}

/** Every key and value, read through a secondary instance so the database is not touched. */
export async function scan(db: string): Promise<string> {
  const secondary = await mkdtemp(join(tmpdir(), 'cg-s3-scan-'));
  try {
    return (await run('ldb', [`--db=${db}`, `--secondary_path=${secondary}`, '--hex', 'scan'])).stdout;
  } finally {
    await rm(secondary, { recursive: true, force: true });
  }
}

/** `relative path -> sha256` of every file under a directory (byte-identical comparison of trees). */
export async function treeDigest(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) =>
    e.isFile(),
  )) {
    const path = join(name.parentPath, name.name);
    out[path.slice(dir.length + 1)] = createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
  }
  return out;
}

/** A logger that keeps every line, to check what is (and is not) logged. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
  };
  return { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') };
}
