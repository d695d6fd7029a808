import { StoreUnavailableError, TimeoutError } from '../errors.js';
import { withDeadline } from '../kit/deadline.js';
import type { Lock, Store } from './types.js';

/** What {@link boundedStore} reports when it stops waiting for a store call. */
export interface AbandonedStoreCall {
  method: string;
  reason: 'deadline' | 'aborted';
  afterMs: number;
}

/**
 * The engine's view of a store: every call, and the `release()` of a lock and the `stop()` of a control
 * subscription it returns, is given up after `ms` whether or not the store ever answers, with
 * `CG_STORE_UNAVAILABLE`. A run whose store hangs stops at its next step (its journal, on the store, is
 * the truth a later `resume` reads), and a hung lock release or subscription stop cannot keep a run, or
 * an emergency rollback, from finishing.
 */
export function boundedStore(
  store: Store,
  ms: number,
  onAbandoned: (call: AbandonedStoreCall) => void,
): Store {
  const bound = <T>(method: string, fn: () => Promise<T>, limit = ms): Promise<T> =>
    withDeadline(() => fn(), {
      ms: limit,
      what: `store ${store.name}: ${method}`,
      onAbandoned: ({ reason, afterMs }) => onAbandoned({ method, reason, afterMs }),
    }).catch((err: unknown) => {
      if (err instanceof TimeoutError) {
        throw new StoreUnavailableError(
          `the store ${store.name} did not answer ${method} within ${limit} ms; the run stops here and can be resumed once the store answers`,
          { cause: err, details: { store: store.name, method, deadlineMs: limit } },
        );
      }
      throw err;
    });

  const boundLock = (lock: Lock): Lock => ({
    environment: lock.environment,
    owner: lock.owner,
    token: lock.token,
    lost: lock.lost,
    release: () => bound('lock release', () => lock.release()),
  });

  const bounded: Store = {
    name: store.name,
    lock: async (environment, owner, ctx) =>
      boundLock(await bound('lock', () => store.lock(environment, owner, ctx))),
    lockOwner: (environment) => bound('lockOwner', () => store.lockOwner(environment)),
    append: (runId, entry, fence) => bound('append', () => store.append(runId, entry, fence)),
    read: (runId) => bound('read', () => store.read(runId)),
    runs: (environment) => bound('runs', () => store.runs(environment)),
    recordHistory: (environment, entry, fence) =>
      bound('recordHistory', () => store.recordHistory(environment, entry, fence)),
    history: (environment) => bound('history', () => store.history(environment)),
    sendControl: (request) => bound('sendControl', () => store.sendControl(request)),
    watchControl: async (environment, runId, handler, ctx) => {
      const sub = await bound('watchControl', () => store.watchControl(environment, runId, handler, ctx));
      return { ...sub, stop: () => bound('control subscription stop', () => sub.stop()) };
    },
    // Waits as long as asked, and then as long as any other call.
    waitForReply: (environment, id, options) =>
      bound('waitForReply', () => store.waitForReply(environment, id, options), options.timeoutMs + ms),
    withdrawControl: (environment, id) =>
      bound('withdrawControl', () => store.withdrawControl(environment, id)),
    ...(store.close ? { close: () => bound('close', () => store.close!()) } : {}),
  };
  return bounded;
}
