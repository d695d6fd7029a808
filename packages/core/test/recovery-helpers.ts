// Real tools for the recovery, hotfix and migration tests: RocksDB databases made with db_bench and ldb
// (Debian's rocksdb-tools), SHA256SUMS written by sha256sum and signed with openssl's ed25519.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Verifier } from '../src/index.js';

const HINT = 'run `bash scripts/install-test-deps.sh` (rocksdb-tools, openssl, coreutils)';

/** Runs a tool; a missing tool fails loudly with how to install it, never skips. */
export function run(command: string, args: string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 64 << 20, ...(cwd ? { cwd } : {}) }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT')
        reject(new Error(`${command} is not installed: ${HINT}`));
      else if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

/** Temporary directories, removed by `cleanup()` whatever happened. */
export function tempDirs() {
  const made: string[] = [];
  return {
    async make(label: string): Promise<string> {
      const dir = await mkdtemp(join(tmpdir(), `cg-${label}-`));
      made.push(dir);
      return dir;
    },
    async cleanup() {
      for (const d of made.splice(0)) await rm(d, { recursive: true, force: true });
    },
  };
}

/** A small real database: db_bench fillrandom (several SST files) plus readable keys put with ldb. */
export async function makeDatabase(db: string, pairs: Record<string, string>, num = 3000): Promise<void> {
  await mkdir(dirname(db), { recursive: true });
  await run('db_bench', [
    '--benchmarks=fillrandom',
    `--db=${db}`,
    `--num=${num}`,
    '--value_size=100',
    '--compression_type=none',
    '--write_buffer_size=131072',
    '--target_file_size_base=131072',
    '--seed=7',
  ]);
  await ldbPut(db, pairs);
}

export async function ldbPut(db: string, pairs: Record<string, string>): Promise<void> {
  await run('ldb', [`--db=${db}`, '--create_if_missing', 'batchput', ...Object.entries(pairs).flat()]);
}

/** Every key and value (`key : value` lines), read as a secondary instance: works while a service holds the LOCK. */
export async function scanDatabase(db: string, from?: string, to?: string): Promise<string> {
  const secondary = await mkdtemp(join(tmpdir(), 'cg-scan-'));
  try {
    const range = [...(from ? [`--from=${from}`] : []), ...(to ? [`--to=${to}`] : [])];
    return await run('ldb', [`--db=${db}`, `--secondary_path=${secondary}`, ...range, 'scan']);
  } finally {
    await rm(secondary, { recursive: true, force: true });
  }
}

/** One key's value, or undefined; read as a secondary instance. */
export async function ldbGet(db: string, key: string): Promise<string | undefined> {
  const out = await scanDatabase(db, key, `${key}\u0001`);
  const line = out.split('\n').find((l) => l.startsWith(`${key} : `));
  return line?.slice(key.length + 3);
}

/** A verifier that reads the live database: the restored data must hold `key` = `value`. */
export function dataVerifier(db: string, key: string, value: () => string): Verifier {
  return {
    name: 'data',
    async verify() {
      const got = await ldbGet(db, key).catch((e: Error) => `unreadable: ${e.message.slice(0, 200)}`);
      const ok = got === value();
      return {
        verdict: ok ? 'pass' : 'fail',
        checks: [
          {
            name: `data.${key}`,
            verdict: ok ? 'pass' : 'fail',
            observed: got ?? null,
            threshold: value(),
            reason: ok ? 'restored data present' : 'restored data missing or different',
          },
        ],
      };
    },
  };
}

/** An ed25519 key pair made by openssl, as a release team would make its signing key. */
export async function signingKey(dir: string): Promise<{ privateKey: string; publicPem: string }> {
  const privateKey = join(dir, `signing-${Math.random().toString(36).slice(2)}.pem`);
  await run('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', privateKey]);
  const publicPem = await run('openssl', ['pkey', '-in', privateKey, '-pubout']);
  return { privateKey, publicPem };
}

/** Writes `SHA256SUMS` beside the files with sha256sum and signs it with `openssl pkeyutl -rawin`. */
export async function signRelease(
  files: string[],
  privateKey: string,
): Promise<{ sums: string; signature: string }> {
  const dir = dirname(files[0]!);
  const sums = join(dir, 'SHA256SUMS');
  await writeFile(
    sums,
    await run(
      'sha256sum',
      files.map((f) => basename(f)),
      dir,
    ),
  );
  const signature = `${sums}.sig`;
  await run('openssl', ['pkeyutl', '-sign', '-inkey', privateKey, '-rawin', '-in', sums, '-out', signature]);
  return { sums, signature };
}

/** A runnable artifact: an ESM program that starts the sample service (with optional faults). */
export async function writeServiceArtifact(
  file: string,
  options: { env?: Record<string, string>; note?: string } = {},
): Promise<void> {
  const server = new URL('../../../examples/sample-service/server.mjs', import.meta.url).pathname;
  const env = Object.entries(options.env ?? {})
    .map(([k, v]) => `process.env[${JSON.stringify(k)}] = ${JSON.stringify(v)};`)
    .join('\n');
  await writeFile(
    file,
    `// ${options.note ?? 'codegraph-api build'}\n${env}\nawait import(${JSON.stringify(server)});\n`,
  );
}

export const readJson = async <T>(file: string): Promise<T> => JSON.parse(await readFile(file, 'utf8')) as T;

/** Polls until `check` holds, failing at the deadline. */
export async function until(
  check: () => Promise<boolean> | boolean,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
