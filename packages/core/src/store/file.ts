import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { ConfigInvalidError, RunNotFoundError, StoreError } from '../errors.js';
import { createMutex, type Mutex } from '../kit/mutex.js';
import { controlDir } from './control-dir.js';
import { LineAppender, readLines } from './jsonl.js';
import { checkFence, currentLease, leaseHeld, takeLease } from './lease.js';
import type { Fence, HistoryEntry, JournalEntry, LockOwner, RunHeader, RunSummary, Store } from './types.js';

/** Options of {@link fileStore}. */
export interface FileStoreOptions {
  /**
   * Directory holding `runs/<runId>.jsonl` (journals) and, per environment, `envs/<environment>/`
   * with `history.jsonl`, `lease/` (the lock), `runs/` (an index of the environment's runs) and
   * `control/` (control requests).
   */
  dir: string;
  /**
   * A lease not refreshed for this long is dead, whoever holds it (an owner on this host is also
   * dead as soon as its process is gone). A holder that could not refresh for this long loses it.
   * @default 60_000
   */
  staleAfterMs?: number;
  /** How often a held lease is refreshed; less than `staleAfterMs`. @default 10_000 */
  refreshEveryMs?: number;
  /** How often a control watcher looks for requests, in milliseconds. @default 120 */
  controlPollMs?: number;
  /** A control request nobody consumed for this long is refused as expired. @default 60_000 */
  controlExpireAfterMs?: number;
  /**
   * Told about a journal that cannot be read when runs are listed (the listing skips it instead of
   * failing). @default a process warning (`CG_STORE_FAILED`) once per file
   */
  onDamaged?: (info: { file: string; error: Error }) => void;
}

const safeName = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const entryTypes = new Set(['run', 'step-started', 'step-finished', 'step-failed', 'note', 'finished']);
const plugin = 'file-store';

/**
 * The embedded default store: append-only JSON-lines journals with fsync, a lease per environment
 * with a fencing token, and control requests as files, all in one directory. See `docs/architecture.md`
 * for what it promises and how.
 *
 * @example
 * ```ts
 * const store = fileStore({ dir: '.codegraph-release' })
 * const engine = createReleaseEngine({ environment: 'production', store, target, strategy })
 * ```
 */
export function fileStore(options: FileStoreOptions): Store {
  if (!options || typeof options.dir !== 'string' || options.dir.length === 0) {
    throw new ConfigInvalidError('fileStore needs a `dir` to keep journals in', { plugin });
  }
  const { dir } = options;
  const staleAfterMs = positive(options.staleAfterMs, 60_000, 'staleAfterMs');
  const refreshEveryMs = positive(options.refreshEveryMs, 10_000, 'refreshEveryMs');
  if (refreshEveryMs >= staleAfterMs) {
    throw new ConfigInvalidError(
      `fileStore: refreshEveryMs (${refreshEveryMs}) must be less than staleAfterMs (${staleAfterMs})`,
      { plugin },
    );
  }
  const lease = { staleAfterMs, refreshEveryMs };
  const runsDir = join(dir, 'runs');
  const envsDir = join(dir, 'envs');
  const indexedMarker = join(envsDir, '.runs-indexed');
  const envDir = (env: string) => join(envsDir, checkName(env, 'environment'));
  const leaseDir = (env: string) => join(envDir(env), 'lease');
  const runFile = (runId: string) => join(runsDir, `${checkName(runId, 'run id')}.jsonl`);
  const appender = new LineAppender();
  const mutexes = new Map<string, Mutex>();
  const serial = <T>(file: string, fn: () => Promise<T>): Promise<T> => {
    let m = mutexes.get(file);
    if (!m) {
      m = createMutex();
      mutexes.set(file, m);
    }
    return m.run(fn);
  };
  const reported = new Set<string>();
  const damaged = (file: string, error: Error) => {
    if (options.onDamaged) return options.onDamaged({ file, error });
    if (reported.has(file)) return;
    reported.add(file);
    process.emitWarning(`${error.message}: skipped when listing runs`, { code: 'CG_STORE_FAILED' });
  };
  const control = controlDir((env) => join(envDir(env), 'control'), {
    pollMs: positive(options.controlPollMs, 120, 'controlPollMs'),
    expireAfterMs: positive(options.controlExpireAfterMs, 60_000, 'controlExpireAfterMs'),
  });

  const fenced = (fence: Fence | undefined) =>
    fence === undefined
      ? undefined
      : { token: checkToken(fence), check: () => checkFence(leaseDir(fence.environment), fence) };

  /** A journal's entries, each checked for the shape every entry has. */
  async function journal(runId: string): Promise<JournalEntry[] | undefined> {
    const file = runFile(runId);
    const read = await readLines(file);
    if (!read) return undefined;
    for (const v of read.values) {
      if (typeof v.seq !== 'number' || typeof v.time !== 'string' || !entryTypes.has(v.type as string)) {
        throw new StoreError(`${file} is damaged: an entry without seq, time or a known type`, { plugin });
      }
      if (v.type === 'run' && !isHeader(v.header, runId)) {
        throw new StoreError(`${file} is damaged: its run header is not valid`, { plugin });
      }
    }
    return read.values as unknown as JournalEntry[];
  }

  async function summary(runId: string, environment: string): Promise<RunSummary | undefined> {
    let entries: JournalEntry[] | undefined;
    try {
      entries = await journal(runId);
    } catch (err) {
      damaged(runFile(runId), err as Error);
      return undefined;
    }
    const head = entries?.find((e) => e.type === 'run');
    if (head?.type !== 'run') return undefined; // marked, but the header never made it: the run never started
    if (head.header.environment !== environment) {
      damaged(
        runFile(runId),
        new StoreError(`${runFile(runId)} is indexed under ${environment} but is not of it`),
      );
      return undefined;
    }
    const end = entries!.findLast((e) => e.type === 'finished');
    const h = head.header;
    return {
      runId: h.runId,
      environment: h.environment,
      kind: h.kind,
      version: h.version,
      startedAt: h.startedAt,
      status: end?.type === 'finished' ? end.status : undefined,
    };
  }

  // Stores written before the per-environment index: index their journals once, skipping damaged ones.
  let indexed: Promise<void> | undefined;
  const ensureIndexed = () => {
    indexed ??= (async () => {
      if (await exists(indexedMarker)) return;
      const names = await fs.readdir(runsDir).catch(() => [] as string[]);
      for (const n of names) {
        const runId = n.endsWith('.jsonl') ? n.slice(0, -'.jsonl'.length) : '';
        if (!safeName.test(runId)) continue;
        try {
          const head = (await journal(runId))?.find((e) => e.type === 'run');
          if (head?.type === 'run' && safeName.test(head.header.environment)) {
            await mark(head.header.environment, runId);
          }
        } catch (err) {
          damaged(runFile(runId), err as Error);
        }
      }
      await fs.mkdir(envsDir, { recursive: true });
      await fs.writeFile(indexedMarker, '', { flag: 'a' });
    })().catch((err) => {
      indexed = undefined;
      throw new StoreError(`cannot index the runs in ${runsDir}`, { cause: err, plugin });
    });
    return indexed;
  };

  async function mark(environment: string, runId: string): Promise<void> {
    const folder = join(envDir(environment), 'runs');
    await fs.mkdir(folder, { recursive: true });
    await fs.writeFile(join(folder, checkName(runId, 'run id')), '', { flag: 'a', mode: 0o600 });
  }

  const store: Store = {
    name: plugin,

    lock(environment, owner) {
      checkOwner(owner);
      return takeLease(leaseDir(environment), environment, owner, lease);
    },

    async lockOwner(environment) {
      const current = await currentLease(leaseDir(environment));
      if (!leaseHeld(current, staleAfterMs) || !current?.owner) return undefined;
      const { runId, pid, host, since } = current.owner;
      return { runId, pid, host, since };
    },

    async append(runId, entry, fence) {
      const file = runFile(runId);
      const f = fenced(fence);
      if (entry.type === 'run') {
        if (!isHeader(entry.header, runId)) {
          throw new ConfigInvalidError(
            `the run header of ${runId} is not valid (runId, environment, kind, version)`,
            {
              plugin,
            },
          );
        }
        await f?.check();
        // Indexed first: a run whose header made it is always listed in its environment.
        await mark(entry.header.environment, runId);
      }
      if (await fs.mkdir(runsDir, { recursive: true })) {
        // A new store: it has no journals from before the index to index.
        await fs.mkdir(envsDir, { recursive: true });
        await fs.writeFile(indexedMarker, '', { flag: 'a' });
      }
      return serial(file, () =>
        appender.append(
          file,
          (seq) => ({ seq, time: new Date().toISOString(), ...entry }) as JournalEntry,
          f,
        ),
      );
    },

    async read(runId) {
      const entries = await journal(runId);
      if (!entries || entries.length === 0) {
        throw new RunNotFoundError(`no run "${runId}" in ${runsDir}`, { plugin });
      }
      return entries;
    },

    async runs(environment) {
      await ensureIndexed();
      const envs =
        environment !== undefined
          ? [checkName(environment, 'environment')]
          : (await fs.readdir(envsDir).catch(() => [] as string[])).filter((n) => safeName.test(n));
      const out: RunSummary[] = [];
      for (const env of envs) {
        const ids = await fs.readdir(join(envDir(env), 'runs')).catch(() => [] as string[]);
        for (const runId of ids.filter((n) => safeName.test(n))) {
          const s = await summary(runId, env);
          if (s) out.push(s);
        }
      }
      return out.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
    },

    async recordHistory(environment, entry, fence) {
      const folder = envDir(environment);
      if (!isHistory(entry)) {
        throw new ConfigInvalidError(
          `history entry of ${environment} is not valid (runId, kind, version, status)`,
          {
            plugin,
          },
        );
      }
      await fs.mkdir(folder, { recursive: true });
      const file = join(folder, 'history.jsonl');
      await serial(file, () => appender.append(file, () => entry, fenced(fence)));
    },

    async history(environment) {
      const file = join(envDir(environment), 'history.jsonl');
      const values = (await readLines(file))?.values ?? [];
      for (const v of values) {
        if (!isHistory(v))
          throw new StoreError(`${file} is damaged: an entry is not a history entry`, { plugin });
      }
      return values as unknown as HistoryEntry[];
    },

    sendControl: (request) => control.send(request),
    watchControl: (environment, runId, handler, ctx) => control.watch(environment, runId, handler, ctx),
    waitForReply: (environment, id, o) => control.waitForReply(environment, id, o),
    withdrawControl: (environment, id) => control.withdraw(environment, id),
  };
  return store;
}

function isHeader(h: unknown, runId: string): h is RunHeader {
  if (typeof h !== 'object' || h === null) return false;
  const v = h as Record<string, unknown>;
  return (
    v.runId === runId &&
    typeof v.environment === 'string' &&
    safeName.test(v.environment) &&
    typeof v.kind === 'string' &&
    typeof v.version === 'string' &&
    typeof v.startedAt === 'string'
  );
}

function isHistory(h: unknown): h is HistoryEntry {
  if (typeof h !== 'object' || h === null || Array.isArray(h)) return false;
  const v = h as Record<string, unknown>;
  return (
    typeof v.runId === 'string' &&
    typeof v.kind === 'string' &&
    typeof v.version === 'string' &&
    typeof v.status === 'string'
  );
}

function checkOwner(owner: LockOwner): void {
  if (
    typeof owner !== 'object' ||
    owner === null ||
    typeof owner.runId !== 'string' ||
    typeof owner.host !== 'string' ||
    typeof owner.since !== 'string' ||
    !Number.isInteger(owner.pid) ||
    owner.pid <= 0
  ) {
    throw new ConfigInvalidError('a lock owner needs runId, pid, host and since', { plugin });
  }
}

function checkToken(fence: Fence): number {
  if (!Number.isSafeInteger(fence?.token) || fence.token <= 0) {
    throw new ConfigInvalidError(`a fence needs a positive integer token, got ${String(fence?.token)}`, {
      plugin,
    });
  }
  return fence.token;
}

function positive(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new ConfigInvalidError(`fileStore: ${what} must be a positive number of milliseconds`, { plugin });
  }
  return value;
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

function checkName(value: string, what: string): string {
  if (typeof value !== 'string' || !safeName.test(value)) {
    throw new ConfigInvalidError(
      `${what} "${String(value)}" is not valid: use letters, digits, '.', '_' and '-' (1-128 characters, not starting with a symbol)`,
      { plugin },
    );
  }
  return value;
}
