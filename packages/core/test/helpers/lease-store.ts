import {
  type JournalEntry,
  type Lock,
  LockLostError,
  type Store,
  StoreError,
  StoreUnavailableError,
  type Target,
} from '../../src/index.js';

/**
 * A lease store around a real store (our own fileStore): it hands out increasing fencing tokens,
 * refuses fenced writes whose token is stale (`CG_LOCK_LOST`), and can be told to lose a holder's
 * lease (its `lock.lost` fires), to be taken over silently, or to go away (`CG_STORE_UNAVAILABLE`).
 */
export function leaseStore(inner: Store) {
  let last = 0;
  const current = new Map<string, number>();
  const holders = new Map<string, AbortController>();
  const control = {
    /** Store calls fail with CG_STORE_UNAVAILABLE while true. */
    down: false,
    /** Appends fail as on a full disk (a short write the store detected) while true. */
    diskFull: false,
    /** Refused fenced writes, in order. */
    refused: [] as string[],
    /** Fires the holder's `lock.lost`, as a store does when a refresh finds another holder. */
    loseLease(environment: string) {
      current.set(environment, ++last);
      holders.get(environment)?.abort(new LockLostError(`the lease on ${environment} was taken over`));
    },
    /** Another process takes the lease over without the holder being told (it is paused, say). */
    takeOver(environment: string) {
      current.set(environment, ++last);
    },
  };
  const up = (what: string) => {
    if (control.down) throw new StoreUnavailableError(`the store is unreachable (${what})`);
  };
  const fenced = (fence: { environment: string; token: number } | undefined, what: string) => {
    if (fence && current.get(fence.environment) !== fence.token) {
      control.refused.push(what);
      throw new LockLostError(`${what}: token ${fence.token} is stale`);
    }
  };
  const store: Store = {
    ...inner,
    name: 'lease-file-store',
    async lock(environment, owner, ctx) {
      up('lock');
      const held = await inner.lock(environment, owner, ctx);
      const token = ++last;
      current.set(environment, token);
      const lost = new AbortController();
      holders.set(environment, lost);
      const lock: Lock = {
        environment,
        owner,
        token,
        lost: lost.signal,
        release: () => held.release(),
      };
      return lock;
    },
    async append(runId, entry, fence): Promise<JournalEntry> {
      up('append');
      fenced(fence, `append ${entry.type} to ${runId}`);
      if (control.diskFull)
        throw new StoreError(`short write to runs/${runId}.jsonl: no space left on device`, {
          plugin: 'file-store',
        });
      // This wrapper is the fencing authority here: the inner store's own lease tokens differ.
      return inner.append(runId, entry);
    },
    async recordHistory(environment, entry, fence) {
      up('recordHistory');
      fenced(fence, `history of ${environment}`);
      return inner.recordHistory(environment, entry);
    },
    async read(runId) {
      up('read');
      return inner.read(runId);
    },
    async runs(environment) {
      up('runs');
      return inner.runs(environment);
    },
    async history(environment) {
      up('history');
      return inner.history(environment);
    },
  };
  return { store, control };
}

/** A target that records every call that changes something (provision, route, retire). */
export function recordingTarget(real: Target) {
  const changes: string[] = [];
  const target: Target = {
    ...real,
    name: real.name,
    describe: (ctx) => real.describe(ctx),
    provision: (req, ctx) => {
      changes.push(`provision ${req.pool} x${req.replicas}`);
      return real.provision(req, ctx);
    },
    retire: (pool, ctx) => {
      changes.push(`retire ${pool}`);
      return real.retire(pool, ctx);
    },
    route: (weights, ctx) => {
      changes.push(`route ${JSON.stringify(weights)}`);
      return real.route!(weights, ctx);
    },
  };
  return { target, changes };
}
