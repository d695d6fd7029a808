import { randomUUID } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import {
  CapabilityMissingError,
  ConfigInvalidError,
  EnvironmentLockedError,
  RunNotFoundError,
  StoreError,
} from '../errors.js';
import type { HistoryEntry, JournalEntry, Lock, LockOwner, RunHeader, RunSummary, Store } from './types.js';

/** Options of {@link fileStore}. */
export interface FileStoreOptions {
  /** Directory holding `runs/`, `envs/<environment>/history.jsonl` and `envs/<environment>/lock.json`. */
  dir: string;
  /**
   * A lock whose owner runs on another host is considered dead when it has not been refreshed for
   * this long (owners on this host are checked by PID). @default 60_000
   */
  staleAfterMs?: number;
  /** How often a held lock is refreshed. @default 10_000 */
  refreshEveryMs?: number;
}

const safeName = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * The embedded default store: append-only JSON-lines journals with fsync, and a per-environment
 * lock file created exclusively, refreshed while held, and taken over when its owner is dead.
 *
 * @example
 * ```ts
 * const store = fileStore({ dir: '.codegraph-release' })
 * const engine = createReleaseEngine({ environment: 'production', store, target, strategy })
 * ```
 */
export function fileStore(options: FileStoreOptions): Store {
  if (!options || typeof options.dir !== 'string' || options.dir.length === 0) {
    throw new ConfigInvalidError('fileStore needs a `dir` to keep journals in', { plugin: 'file-store' });
  }
  const { dir } = options;
  const staleAfterMs = options.staleAfterMs ?? 60_000;
  const refreshEveryMs = options.refreshEveryMs ?? 10_000;
  const runsDir = join(dir, 'runs');
  const envDir = (env: string) => join(dir, 'envs', checkName(env, 'environment'));
  const runFile = (runId: string) => join(runsDir, `${checkName(runId, 'run id')}.jsonl`);
  const seqs = new Map<string, number>();

  async function appendLine(file: string, value: unknown): Promise<void> {
    const handle = await fs.open(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
    try {
      await handle.write(`${JSON.stringify(value)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async function readLines<T>(file: string): Promise<T[] | undefined> {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StoreError(`cannot read ${file}`, { cause: err, plugin: 'file-store' });
    }
    const out: T[] = [];
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as T);
      } catch (err) {
        // A torn last line is what a crash mid-write leaves: the entry never completed, so it never happened.
        if (i >= lines.length - 2) break;
        throw new StoreError(`journal ${file} is corrupt at line ${i + 1}`, {
          cause: err,
          plugin: 'file-store',
        });
      }
    }
    return out;
  }

  async function readOwner(
    file: string,
  ): Promise<(LockOwner & { token: string; refreshedAt: string }) | undefined> {
    try {
      return JSON.parse(await fs.readFile(file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (err instanceof SyntaxError) return undefined;
      throw new StoreError(`cannot read lock ${file}`, { cause: err, plugin: 'file-store' });
    }
  }

  function ownerIsDead(owner: LockOwner & { refreshedAt: string }): boolean {
    if (owner.host === hostname()) {
      try {
        process.kill(owner.pid, 0);
        return false;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'ESRCH';
      }
    }
    return Date.now() - Date.parse(owner.refreshedAt) > staleAfterMs;
  }

  const store: Store = {
    name: 'file-store',

    async lock(environment, owner) {
      const folder = envDir(environment);
      await fs.mkdir(folder, { recursive: true });
      const file = join(folder, 'lock.json');
      const token = randomUUID();
      const body = () => JSON.stringify({ ...owner, token, refreshedAt: new Date().toISOString() });
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          // O_EXCL: exactly one creator wins, on any local filesystem.
          const handle = await fs.open(file, 'wx', 0o600);
          await handle.writeFile(body());
          await handle.sync();
          await handle.close();
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
            throw new StoreError(`cannot create lock ${file}`, { cause: err, plugin: 'file-store' });
          }
          const current = await readOwner(file);
          if (current && !ownerIsDead(current)) {
            throw new EnvironmentLockedError(
              `environment "${environment}" is locked by run ${current.runId} (pid ${current.pid} on ${current.host} since ${current.since}); wait for it to finish, or resume or roll back that run`,
              {
                plugin: 'file-store',
                details: {
                  owner: { runId: current.runId, pid: current.pid, host: current.host, since: current.since },
                },
              },
            );
          }
          // Dead owner: move its lock aside atomically; only one contender's rename succeeds.
          const aside = `${file}.stale-${token}`;
          try {
            await fs.rename(file, aside);
            await fs.rm(aside, { force: true });
          } catch (renameErr) {
            if ((renameErr as NodeJS.ErrnoException).code !== 'ENOENT') throw renameErr;
          }
          if (attempt === 2) {
            throw new EnvironmentLockedError(`environment "${environment}" lock is contended; try again`, {
              plugin: 'file-store',
            });
          }
        }
      }
      let released = false;
      const timer = setInterval(async () => {
        const current = await readOwner(file).catch(() => undefined);
        if (!released && current?.token === token) await fs.writeFile(file, body()).catch(() => {});
      }, refreshEveryMs);
      timer.unref();
      const lock: Lock = {
        environment,
        owner,
        // Placeholder until the file store keeps a lease counter (issue 12/13 work in progress).
        token: 0,
        lost: new AbortController().signal,
        async release() {
          if (released) return;
          released = true;
          clearInterval(timer);
          const current = await readOwner(file);
          if (current?.token === token) await fs.rm(file, { force: true });
        },
      };
      return lock;
    },

    async lockOwner(environment) {
      const current = await readOwner(join(envDir(environment), 'lock.json'));
      if (!current || ownerIsDead(current)) return undefined;
      const { runId, pid, host, since } = current;
      return { runId, pid, host, since };
    },

    async append(runId, entry) {
      const file = runFile(runId);
      let seq = seqs.get(runId);
      if (seq === undefined) {
        await fs.mkdir(runsDir, { recursive: true });
        seq = (await readLines<JournalEntry>(file))?.length ?? 0;
      }
      const full = { seq, time: new Date().toISOString(), ...entry } as JournalEntry;
      try {
        await appendLine(file, full);
      } catch (err) {
        throw new StoreError(`cannot append to journal ${file}`, { cause: err, plugin: 'file-store' });
      }
      seqs.set(runId, seq + 1);
      return full;
    },

    async read(runId) {
      const entries = await readLines<JournalEntry>(runFile(runId));
      if (!entries || entries.length === 0) {
        throw new RunNotFoundError(`no run "${runId}" in ${runsDir}`, { plugin: 'file-store' });
      }
      return entries;
    },

    async runs(environment) {
      let names: string[];
      try {
        names = await fs.readdir(runsDir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw new StoreError(`cannot list ${runsDir}`, { cause: err, plugin: 'file-store' });
      }
      const out: RunSummary[] = [];
      for (const name of names.filter((n) => n.endsWith('.jsonl'))) {
        const entries = (await readLines<JournalEntry>(join(runsDir, name))) ?? [];
        const head = entries.find((e) => e.type === 'run') as { header: RunHeader } | undefined;
        if (!head || (environment && head.header.environment !== environment)) continue;
        const end = entries.findLast((e) => e.type === 'finished') as
          | { status: RunSummary['status'] }
          | undefined;
        out.push({
          runId: head.header.runId,
          environment: head.header.environment,
          kind: head.header.kind,
          version: head.header.version,
          startedAt: head.header.startedAt,
          status: end?.status,
        });
      }
      return out.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
    },

    async recordHistory(environment, entry) {
      const folder = envDir(environment);
      await fs.mkdir(folder, { recursive: true });
      await appendLine(join(folder, 'history.jsonl'), entry);
    },

    async history(environment) {
      return (await readLines<HistoryEntry>(join(envDir(environment), 'history.jsonl'))) ?? [];
    },

    // Control through the store is being built (issue 13); until then the CLI's control files apply.
    async sendControl() {
      throw new CapabilityMissingError('file-store: control requests are not implemented yet');
    },
    async watchControl() {
      return { stop: async () => {} };
    },
    async waitForReply() {
      return undefined;
    },
    async withdrawControl() {
      return false;
    },
  };
  return store;
}

function checkName(value: string, what: string): string {
  if (typeof value !== 'string' || !safeName.test(value)) {
    throw new ConfigInvalidError(
      `${what} "${String(value)}" is not valid: use letters, digits, '.', '_' and '-' (1-128 characters, not starting with a symbol)`,
      { plugin: 'file-store' },
    );
  }
  return value;
}
