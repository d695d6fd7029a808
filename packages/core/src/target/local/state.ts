import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { TargetOperationError, TargetUnavailableError } from '../../errors.js';
import { writeFileAtomic } from '../../kit/fs.js';
import { delay, isAlive, type ProcessRecord } from './processes.js';

/** One replica as recorded in `pools.json`. */
export interface ReplicaRecord extends ProcessRecord {
  index: number;
  port: number;
  log: string;
}

/** One pool as recorded in `pools.json`. */
export interface PoolRecord {
  version: string;
  /** Replicas asked for by the last provision. */
  replicas: number;
  members: ReplicaRecord[];
}

/** What the proxy process writes to `proxy.json` once it listens. */
export interface ProxyRecord extends ProcessRecord {
  host: string;
  port: number;
  controlPort: number;
  token: string;
}

/** The proxy's routing table (`routes.json`), written by the proxy when it acknowledges a change. */
export interface RoutesRecord {
  pools: Record<string, { version: string; weight: number; endpoints: string[] }>;
}

/**
 * The files of a local target's state directory:
 * - `pools.json`: pools and their replicas (PIDs, ports), written by the target;
 * - `proxy.json`: the running proxy (PID, ports, control token; mode 0600), written by the proxy;
 * - `routes.json`: weights and endpoints per pool, written by the proxy;
 * - `logs/`: one log per replica and one for the proxy.
 */
export class StateDir {
  readonly logs: string;
  constructor(readonly dir: string) {
    this.logs = path.join(dir, 'logs');
  }

  async ensure(): Promise<void> {
    await mkdir(this.logs, { recursive: true });
  }

  private async read<T>(name: string, fallback: T): Promise<T> {
    let text: string;
    try {
      text = await readFile(path.join(this.dir, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
      throw new TargetOperationError(`local target: cannot read ${name} in ${this.dir}`, { cause: err });
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new TargetOperationError(
        `local target: ${name} in ${this.dir} is not valid JSON; remove the state directory's processes and file to start over`,
        { cause: err },
      );
    }
  }

  /** Writes atomically (core's kit), so a crash or a full disk never leaves a half-written record. */
  private async write(name: string, value: unknown, mode = 0o644): Promise<void> {
    await writeFileAtomic(path.join(this.dir, name), `${JSON.stringify(value, null, 2)}\n`, { mode });
  }

  pools(): Promise<Record<string, PoolRecord>> {
    return this.read<{ pools: Record<string, PoolRecord> }>('pools.json', { pools: {} }).then((s) => s.pools);
  }

  private saving: Promise<unknown> = Promise.resolve();

  /**
   * Saves the pools. Saves run one after the other, each serializing the pools when its turn comes, so
   * parallel replica starts cannot leave an older picture on disk.
   */
  savePools(pools: Record<string, PoolRecord>): Promise<void> {
    const run = this.saving.then(() => this.write('pools.json', { pools }));
    this.saving = run.catch(() => {});
    return run;
  }

  proxy(): Promise<ProxyRecord | undefined> {
    return this.read<ProxyRecord | undefined>('proxy.json', undefined);
  }

  routes(): Promise<RoutesRecord> {
    return this.read<RoutesRecord>('routes.json', { pools: {} });
  }

  /** Forgets every record; logs stay for post-mortems. */
  async clear(): Promise<void> {
    await Promise.all(
      ['pools.json', 'proxy.json', 'routes.json'].map((f) => rm(path.join(this.dir, f), { force: true })),
    );
  }

  /**
   * Runs `fn` holding `<name>.lock` (created exclusively, holding our PID). A lock whose holder died is
   * taken over; a live holder is waited for up to `timeoutMs`.
   */
  async withLock<T>(
    name: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    fn: () => Promise<T>,
  ): Promise<T> {
    await this.ensure();
    const file = path.join(this.dir, `${name}.lock`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const handle = await open(file, 'wx');
        await handle.writeFile(String(process.pid));
        await handle.close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = Number(await readFile(file, 'utf8').catch(() => ''));
      // An empty file is a holder between open and write; empty for long, its holder died in between.
      const age = Date.now() - ((await stat(file).catch(() => undefined))?.mtimeMs ?? Date.now());
      if ((holder > 0 && !isAlive({ pid: holder })) || (!(holder > 0) && age > 2_000)) {
        await rm(file, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new TargetUnavailableError(
          `local target: ${file} is held by process ${holder || '?'}; try again`,
        );
      }
      await delay(20, signal, `waiting for ${name}.lock`);
    }
    try {
      return await fn();
    } finally {
      await rm(file, { force: true });
    }
  }

  logFile(name: string): string {
    return path.join(this.logs, `${name}.log`);
  }
}
