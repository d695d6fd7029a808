import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, promises as fs, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

// A real PostgreSQL server for tests and benchmarks: `initdb` into a temp directory, `postgres -k DIR -p
// PORT` on loopback, stopped (and its directory removed) by `destroy()`. initdb and postgres refuse to run
// as root, so as root both run as the `postgres` user (or `nobody`) through setpriv.

/** The superuser the tests connect as, trusted on loopback; other roles need their password. */
export const superuser = 'cg';

/** A running test server. */
export interface TestPostgres {
  readonly port: number;
  readonly dataDir: string;
  /** A connection string for the trusted superuser and the `postgres` database. */
  readonly url: string;
  /** A connection string for a fresh database of its own (for one test's isolation). */
  createDatabase(name: string): Promise<string>;
  /** Creates a login role that must authenticate with `password` (SCRAM) and owns database `db`. */
  createRole(name: string, password: string, db: string): Promise<string>;
  /** Stops the server (fast shutdown: clients are disconnected), keeping its data. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
}

/** Options of {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Keep fsync on (benchmarks measure real commits). @default false: tests skip fsync for speed */
  durable?: boolean;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
}

/** The directory holding `initdb` and `postgres`: on PATH, else Debian's `/usr/lib/postgresql/<v>/bin`. */
export function postgresBinDir(): string {
  try {
    const found = execFileSync('sh', ['-c', 'command -v postgres'], { encoding: 'utf8' }).trim();
    if (found) {
      const real = execFileSync('readlink', ['-f', found], { encoding: 'utf8' }).trim();
      return real.slice(0, real.lastIndexOf('/'));
    }
  } catch {
    // not on PATH: look where Debian puts it
  }
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => existsSync(join(base, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(
      'PostgreSQL server binaries (initdb, postgres) are missing: run `bash scripts/install-test-deps.sh` (installs Debian package postgresql)',
    );
  }
  return join(base, versions[0]!, 'bin');
}

/** Under root, the user the server runs as: uid/gid of `postgres`, else `nobody`. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      // try the next one
    }
  }
  throw new Error('running as root and no postgres/nobody user to run initdb and postgres as');
}

function asServerUser(bin: string, args: string[]): [string, string[]] {
  const user = serverUser();
  if (!user) return [bin, args];
  return ['setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--', bin, ...args]];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const alive = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of alive) child.kill('SIGQUIT');
});

/**
 * Starts a PostgreSQL server in a temp directory on a free loopback port.
 *
 * @example
 * ```ts
 * const server = await startPostgres()
 * afterAll(() => server.destroy())
 * const store = postgresStore({ connectionString: await server.createDatabase('t1') })
 * ```
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<TestPostgres> {
  const bin = postgresBinDir();
  const root = await fs.mkdtemp(join(tmpdir(), 'cg-pg-'));
  const dataDir = join(root, 'data');
  const socketDir = join(root, 'sock');
  await fs.mkdir(socketDir);
  const user = serverUser();
  if (user) {
    await fs.chown(root, user.uid, user.gid);
    await fs.chown(socketDir, user.uid, user.gid);
  }
  const [initCmd, initArgs] = asServerUser(join(bin, 'initdb'), [
    '-D',
    dataDir,
    '-U',
    superuser,
    '--auth=trust',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  execFileSync(initCmd, initArgs, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  // The superuser is trusted on loopback; every other role proves its password.
  await fs.writeFile(
    join(dataDir, 'pg_hba.conf'),
    [
      'local all all trust',
      `host all ${superuser} 127.0.0.1/32 trust`,
      'host all all 127.0.0.1/32 scram-sha-256',
      '',
    ].join('\n'),
  );
  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = '';
  const url = `postgres://${superuser}@127.0.0.1:${port}/postgres`;

  async function start(): Promise<void> {
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      max_connections: '200',
      shared_buffers: '64MB',
      ...(options.durable ? {} : { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' }),
      ...options.settings,
    };
    const args = ['-D', dataDir, '-k', socketDir, '-p', String(port)];
    for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
    const [cmd, cmdArgs] = asServerUser(join(bin, 'postgres'), args);
    const proc = spawn(cmd, cmdArgs, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    alive.add(proc);
    proc.stdout!.on('data', (d) => (log += d));
    proc.stderr!.on('data', (d) => (log = (log + d).slice(-20_000)));
    proc.once('exit', () => alive.delete(proc));
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`postgres exited while starting:\n${log}`);
      }
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('select 1');
        await client.end();
        return;
      } catch {
        await client.end().catch(() => {});
        if (Date.now() > deadline)
          throw new Error(`postgres did not accept connections within 20 s:\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async function stop(): Promise<void> {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGINT');
    const timer = setTimeout(() => proc.kill('SIGQUIT'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  async function sql(text: string, database = 'postgres'): Promise<void> {
    const client = new pg.Client({ connectionString: url.replace(/\/postgres$/, `/${database}`) });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  }

  await start();
  return {
    port,
    dataDir,
    url,
    async createDatabase(name) {
      await sql(`CREATE DATABASE "${name}"`);
      return url.replace(/\/postgres$/, `/${name}`);
    },
    async createRole(name, password, db) {
      await sql(`CREATE ROLE "${name}" LOGIN PASSWORD '${password.replace(/'/g, "''")}'`);
      await sql(`CREATE DATABASE "${db}" OWNER "${name}"`);
      return `postgres://${name}:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;
    },
    stop,
    start,
    async destroy() {
      await stop();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}
