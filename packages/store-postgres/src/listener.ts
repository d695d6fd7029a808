import pg from 'pg';
import type { Db } from './db.js';

/** Who hears notifications: called with the payload, and with `undefined` after a reconnect (catch up). */
type Hearer = (payload: string | undefined) => void;

/**
 * One dedicated connection that LISTENs for the store's channels, shared by every watcher and waiter of
 * the store. It connects when the first one subscribes and disconnects when the last one leaves (so an
 * idle store keeps no connection and no process alive). It listens on every channel of the store at once. A dropped connection is made again with backoff;
 * until then, and once right after, subscribers poll.
 */
export function createListener(db: Db, channels: readonly string[]) {
  const { logger, clientConfig } = db.options;
  const hearers = new Map<string, Set<Hearer>>();
  let client: pg.Client | undefined;
  let connecting: Promise<void> | undefined;
  let retry: NodeJS.Timeout | undefined;
  let backoffMs = 100;
  /** performance.now() when the current connection started listening; undefined while not listening. */
  let listeningSince: number | undefined;

  const count = () => [...hearers.values()].reduce((n, set) => n + set.size, 0);

  function broadcast(payload: string | undefined, channel?: string): void {
    for (const [name, set] of hearers) {
      if (channel !== undefined && name !== channel) continue;
      for (const hear of set) hear(payload);
    }
  }

  function dropped(c: pg.Client, err?: Error): void {
    if (client !== c) return;
    client = undefined;
    listeningSince = undefined;
    c.removeAllListeners('notification');
    c.end().catch(() => {});
    if (err)
      logger.warn(
        `postgres-store: the LISTEN connection to ${db.label.where} dropped: ${db.label.redactor.string(err.message)}`,
      );
    scheduleReconnect();
  }

  function scheduleReconnect(): void {
    if (retry || count() === 0 || db.closed) return;
    retry = setTimeout(() => {
      retry = undefined;
      void ensure();
    }, backoffMs);
    retry.unref();
    backoffMs = Math.min(backoffMs * 2, 5_000);
  }

  function ensure(): Promise<void> {
    if (client || db.closed || count() === 0) return Promise.resolve();
    connecting ??= (async () => {
      const c = new pg.Client({ ...clientConfig, application_name: 'codegraph-release-listen' });
      c.on('error', (err) => dropped(c, err));
      c.on('end', () => dropped(c));
      c.on('notification', (n) => broadcast(n.payload ?? '', n.channel));
      try {
        await db.ready();
        await c.connect();
        client = c;
        for (const channel of channels) await c.query(`LISTEN "${channel}"`);
        listeningSince = performance.now();
        backoffMs = 100;
        // Whatever was sent while nobody listened is found by one scan now.
        broadcast(undefined);
      } catch (err) {
        if (client === c) client = undefined;
        c.removeAllListeners('notification');
        await c.end().catch(() => {});
        logger.debug(
          `postgres-store: cannot LISTEN on ${db.label.where} yet: ${db.label.redactor.string((err as Error).message)}`,
        );
        scheduleReconnect();
      } finally {
        connecting = undefined;
      }
    })();
    return connecting;
  }

  return {
    /** Since when notifications have been heard without a gap (undefined: not now). */
    get listeningSince() {
      return listeningSince;
    },

    /** Subscribes to a channel; resolves once listening (or once the first attempt failed: poll meanwhile). */
    async subscribe(channel: string, hear: Hearer): Promise<() => Promise<void>> {
      const set = hearers.get(channel) ?? new Set<Hearer>();
      hearers.set(channel, set);
      set.add(hear);
      await ensure();
      return async () => {
        set.delete(hear);
        if (count() > 0) return;
        hearers.clear();
        clearTimeout(retry);
        retry = undefined;
        const c = client;
        client = undefined;
        listeningSince = undefined;
        if (c) {
          c.removeAllListeners();
          c.on('error', () => {});
          await c.end().catch(() => {});
        }
      };
    },

    async close(): Promise<void> {
      hearers.clear();
      clearTimeout(retry);
      retry = undefined;
      const c = client;
      client = undefined;
      listeningSince = undefined;
      if (c) {
        c.removeAllListeners();
        c.on('error', () => {});
        await c.end().catch(() => {});
      }
    },
  };
}

export type Listener = ReturnType<typeof createListener>;
