import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll } from 'vitest';

const INSTALL_HINT = 'run `bash scripts/install-test-deps.sh` (or `apt-get install rocksdb-tools`)';

function run(command: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error(`${command} is not installed: ${INSTALL_HINT}`));
      } else if (err) {
        reject(new Error(`${command} ${args.join(' ')} failed: ${stderr || err.message}`));
      } else resolve({ stdout, stderr });
    });
  });
}

/** Fails (never skips) when a RocksDB tool is missing, saying how to install it. */
export async function requireTools(...tools: string[]): Promise<void> {
  for (const tool of tools) {
    await run('sh', ['-c', `command -v ${tool}`]).catch(() => {
      throw new Error(`${tool} is not installed: ${INSTALL_HINT}`);
    });
  }
}

/** Temporary directories removed after the file's tests, whatever happened. */
export function tempDirs(): (label?: string) => Promise<string> {
  const made: string[] = [];
  afterAll(async () => {
    for (const dir of made) await rm(dir, { recursive: true, force: true });
  });
  return async (label = 'test') => {
    const dir = await mkdtemp(join(tmpdir(), `cg-backup-${label}-`));
    made.push(dir);
    return dir;
  };
}

/** A small real database (a few MB in several SST files) written by db_bench. */
export async function fillDatabase(
  db: string,
  options: { num: number; seed: number; writes?: number; valueSize?: number },
) {
  // fillrandom wants a fresh database; `overwrite` adds `writes` random keys to an existing one.
  const existing = options.writes !== undefined;
  await mkdir(dirname(db), { recursive: true });
  await run('db_bench', [
    `--benchmarks=${existing ? 'overwrite' : 'fillrandom'}`,
    `--db=${db}`,
    `--num=${options.num}`,
    // New writes land in new SST files; without compactions the old files stay as they are.
    ...(existing ? [`--writes=${options.writes}`, '--disable_auto_compactions=1'] : []),
    `--value_size=${options.valueSize ?? 100}`,
    '--compression_type=none',
    '--write_buffer_size=262144',
    '--target_file_size_base=262144',
    `--seed=${options.seed}`,
    `--use_existing_db=${existing ? 1 : 0}`,
  ]);
}

/** Puts readable keys with ldb. */
export async function ldbPut(db: string, pairs: Record<string, string>): Promise<void> {
  await run('ldb', [`--db=${db}`, '--create_if_missing', 'batchput', ...Object.entries(pairs).flat()]);
}

/** Every key and value, hex-encoded, read through a secondary instance so the database is not touched. */
export async function scan(db: string): Promise<string> {
  const secondary = await mkdtemp(join(tmpdir(), 'cg-backup-scan-'));
  try {
    return (await run('ldb', [`--db=${db}`, `--secondary_path=${secondary}`, '--hex', 'scan'])).stdout;
  } finally {
    await rm(secondary, { recursive: true, force: true });
  }
}

/** `ldb checkconsistency`: throws when RocksDB finds the files inconsistent. */
export async function checkConsistency(db: string): Promise<string> {
  return (await run('ldb', [`--db=${db}`, 'checkconsistency'])).stdout.trim();
}

export async function sstFiles(db: string): Promise<string[]> {
  return (await readdir(db)).filter((n) => n.endsWith('.sst')).sort();
}

/** Flips one bit of a file in place (blobs are read-only, so the mode is lifted first). */
export async function flipByte(file: string, offset: number): Promise<void> {
  await chmod(file, 0o644);
  const handle = await open(file, 'r+');
  try {
    const buf = Buffer.alloc(1);
    await handle.read(buf, 0, 1, offset);
    buf[0] = (buf[0] ?? 0) ^ 0x01;
    await handle.write(buf, 0, 1, offset);
  } finally {
    await handle.close();
  }
}

/** Polls `probe` until it returns a value, or fails at the deadline. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 15_000,
) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A child process that holds the database's LOCK the way RocksDB does (a POSIX fcntl lock). */
export async function holdLock(db: string): Promise<{ pid: number; release: () => Promise<void> }> {
  const child: ChildProcess = spawn(
    'python3',
    [
      '-c',
      'import fcntl,os,sys\nfd=os.open(sys.argv[1],os.O_RDWR|os.O_CREAT)\nfcntl.lockf(fd,fcntl.LOCK_EX)\nprint("locked",flush=True)\nsys.stdin.read()',
      join(db, 'LOCK'),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  let failure: Error | undefined;
  child.on('error', (err) => {
    failure = new Error(`python3 is needed to hold a POSIX lock in tests: ${err.message}`);
  });
  child.stdout?.on('data', (d) => {
    out += String(d);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await waitFor('the lock holder to take the LOCK', () => {
    if (failure) throw failure;
    return out.includes('locked') ? true : undefined;
  });
  return {
    pid: child.pid ?? -1,
    release: async () => {
      child.stdin?.end();
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Where a local repository keeps a blob. */
export function blobFile(repository: string, sha256: string): string {
  return join(repository, 'blobs', 'sha256', sha256.slice(0, 2), sha256);
}

/** A backup's manifest as stored (parsed), and where it is. */
export async function storedManifest(repository: string, id: string) {
  const path = join(repository, 'backups', id, 'manifest.json');
  const manifest = JSON.parse(await readFile(path, 'utf8')) as {
    files: Array<{ path: string; size: number; sha256: string; mode: number }>;
    [key: string]: unknown;
  };
  return { path, manifest };
}
