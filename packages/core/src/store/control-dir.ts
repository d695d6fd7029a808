import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { OperationContext } from '../context.js';
import { StoreError } from '../errors.js';
import { writeFileAtomic } from '../kit/fs.js';
import { checkIdentifier } from '../rules.js';
import {
  checkControlId,
  checkControlInput,
  checkControlReply,
  checkControlRequest,
  controlActions,
  controlLimits,
  newControlId,
  replyMessage,
} from './control.js';
import type {
  ControlAction,
  ControlOutcome,
  ControlReply,
  ControlRequest,
  ControlRequestInput,
  ControlSubscription,
} from './types.js';

// Control requests on the file store's directory, per environment:
//
//   envs/<env>/control/requests/<id>.json   sent (written atomically; dot-files are writes in progress)
//   envs/<env>/control/claimed/<id>.json    consumed: a watcher renamed it here (one rename wins)
//   envs/<env>/control/withdrawn/<id>.json  withdrawn by its sender before anyone consumed it
//   envs/<env>/control/rejected/<name>      refused (bad content, foreign owner, expired) and set aside
//   envs/<env>/control/replies/<id>.json    the answer, written atomically
//
// Claiming and withdrawing are both a rename out of requests/: exactly one of them wins. Every name
// used for a reply is the checked id, so nothing from a request's content ever builds a path. Files
// in claimed/, withdrawn/, rejected/ and replies/ are removed after an hour.

const plugin = 'file-store';
const requestName = /^([A-Za-z0-9_-]{8,64})\.json$/;
const senderTemp = /^\.[A-Za-z0-9_-]{8,64}\.json\.[0-9a-f]{12}\.tmp$/;
const subdirs = ['requests', 'claimed', 'withdrawn', 'rejected', 'replies'] as const;
const keepMs = 3_600_000;

/** Options of the control directory. */
export interface ControlDirOptions {
  /** How often a watcher looks at the directory. */
  pollMs: number;
  /** A request nobody consumed for this long is refused as expired by the next watcher that sees it. */
  expireAfterMs: number;
}

type Handler = (request: ControlRequest) => Promise<ControlOutcome>;

/** Control requests kept in `root/envs/<env>/control`. */
export function controlDir(controlRoot: (environment: string) => string, options: ControlDirOptions) {
  const folder = (environment: string, sub: (typeof subdirs)[number]) => join(controlRoot(environment), sub);
  const ensure = (environment: string) =>
    Promise.all(subdirs.map((s) => fs.mkdir(folder(environment, s), { recursive: true })));
  const myUid = typeof process.getuid === 'function' ? process.getuid() : undefined;

  /** Reads a stored record: a regular file of ours, not too big. Throws with the reason to refuse it. */
  async function readRecord(file: string): Promise<unknown> {
    // O_NONBLOCK: a FIFO dropped in the directory must not hang the watcher; O_NOFOLLOW: no links.
    const handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new Error('not a regular file');
      if (myUid !== undefined && stat.uid !== myUid) {
        throw new Error(`its file belongs to uid ${stat.uid}, not to the store's uid ${myUid}`);
      }
      if (stat.size > controlLimits.recordMaxBytes) {
        throw new Error(`its file is ${stat.size} bytes; at most ${controlLimits.recordMaxBytes}`);
      }
      const text = await handle.readFile('utf8');
      try {
        return JSON.parse(text);
      } catch {
        throw new Error('it is not JSON');
      }
    } finally {
      await handle.close();
    }
  }

  async function reply(environment: string, value: ControlReply): Promise<void> {
    await writeFileAtomic(
      join(folder(environment, 'replies'), `${checkControlId(value.id)}.json`),
      JSON.stringify(value),
    );
  }

  /** Moves a refused request to rejected/ and, when it has a usable id, answers it. */
  async function setAside(
    environment: string,
    from: string,
    id: string | undefined,
    why: string,
    raw?: unknown,
  ) {
    const aside = join(
      folder(environment, 'rejected'),
      `${id ?? 'unnamed'}.${randomBytes(4).toString('hex')}`,
    );
    await fs.rename(from, aside).catch(() => fs.rm(from, { force: true }));
    if (id) {
      const action = (raw as { action?: unknown } | undefined)?.action;
      await reply(environment, {
        id,
        ...(typeof action === 'string' && (controlActions as readonly string[]).includes(action)
          ? { action: action as ControlAction }
          : {}),
        applied: false,
        message: replyMessage(`refused: ${why}`),
        at: new Date().toISOString(),
      });
    }
  }

  async function prune(environment: string): Promise<void> {
    for (const sub of subdirs) {
      const dir = folder(environment, sub);
      for (const n of await fs.readdir(dir).catch(() => [] as string[])) {
        if (sub === 'requests' && !n.startsWith('.')) continue; // only stale temp files of senders
        const stat = await fs.lstat(join(dir, n)).catch(() => undefined);
        if (stat && Date.now() - stat.mtimeMs > keepMs)
          await fs.rm(join(dir, n), { force: true }).catch(() => {});
      }
    }
  }

  /** One look at the directory: consumes what is addressed to `runId`, in send order. */
  async function consume(environment: string, runId: string, handler: Handler, stopped: () => boolean) {
    const requests = folder(environment, 'requests');
    // A sender's write in progress (`writeFileAtomic`'s temp file) is left alone; any other name is looked at.
    const names = (await fs.readdir(requests)).filter((n) => !senderTemp.test(n)).sort();
    for (const n of names) {
      if (stopped()) return;
      const m = requestName.exec(n);
      const from = join(requests, n);
      if (!m) {
        await setAside(environment, from, undefined, 'bad file name');
        continue;
      }
      const id = m[1]!;
      // Peek to see whom it is for; the claimed copy is checked again before anything acts on it.
      let peek: ControlRequest | undefined;
      try {
        peek = checkControlRequest(await readRecord(from), { id, environment });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      }
      const expired = peek !== undefined && Date.now() - Date.parse(peek.createdAt) > options.expireAfterMs;
      if (peek && peek.runId !== undefined && peek.runId !== runId && !expired) continue;
      const claimed = join(folder(environment, 'claimed'), n);
      try {
        await fs.rename(from, claimed);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // another watcher or a withdraw won
        throw err;
      }
      let request: ControlRequest;
      let raw: unknown;
      try {
        raw = await readRecord(claimed);
        request = checkControlRequest(raw, { id, environment });
      } catch (err) {
        await setAside(environment, claimed, id, (err as Error).message, raw);
        continue;
      }
      if (Date.now() - Date.parse(request.createdAt) > options.expireAfterMs) {
        await setAside(
          environment,
          claimed,
          id,
          `expired: nobody consumed it within ${options.expireAfterMs} ms`,
          raw,
        );
        continue;
      }
      if (request.runId !== undefined && request.runId !== runId) {
        // Changed between the peek and the claim: put it back for its run.
        await fs.rename(claimed, from).catch(() => {});
        continue;
      }
      let outcome: ControlOutcome;
      try {
        outcome = await handler(request);
      } catch (err) {
        outcome = { applied: false, message: `the run could not act on it: ${(err as Error).message}` };
      }
      await reply(environment, {
        id,
        runId,
        action: request.action,
        applied: outcome.applied === true,
        ...(outcome.message !== undefined ? { message: replyMessage(String(outcome.message)) } : {}),
        at: new Date().toISOString(),
      });
    }
  }

  return {
    async send(input: ControlRequestInput): Promise<ControlRequest> {
      const checked = checkControlInput(input);
      const request: ControlRequest = { id: newControlId(), ...checked, createdAt: new Date().toISOString() };
      try {
        await ensure(checked.environment);
        await writeFileAtomic(
          join(folder(checked.environment, 'requests'), `${request.id}.json`),
          JSON.stringify(request),
        );
      } catch (err) {
        throw new StoreError(`cannot store the ${checked.action} request`, { cause: err, plugin });
      }
      return request;
    },

    async watch(
      environment: string,
      runId: string,
      handler: Handler,
      ctx?: OperationContext,
    ): Promise<ControlSubscription> {
      checkIdentifier(environment, 'environment', { plugin });
      checkIdentifier(runId, 'run id', { plugin });
      await ensure(environment);
      let stopped = false;
      let busy: Promise<void> | undefined;
      let lastPrune = 0;
      const tick = () => {
        if (stopped || busy) return;
        busy = (async () => {
          try {
            await consume(environment, runId, handler, () => stopped);
            if (Date.now() - lastPrune > 60_000) {
              lastPrune = Date.now();
              await prune(environment);
            }
          } catch {
            // A vanished directory or a busy disk: the next tick tries again.
          }
        })().finally(() => {
          busy = undefined;
        });
      };
      // The first look waits one interval: the caller finishes setting up the run it delivers to.
      // Not unref'd: like a listening server, a subscription keeps its process alive until stopped (a
      // run paused for an approval has nothing else pending).
      const timer = setInterval(tick, options.pollMs);
      const stop = async () => {
        stopped = true;
        clearInterval(timer);
        ctx?.signal?.removeEventListener('abort', onAbort);
        await busy;
      };
      const onAbort = () => void stop();
      ctx?.signal?.addEventListener('abort', onAbort, { once: true });
      return { stop };
    },

    async waitForReply(
      environment: string,
      id: string,
      o: { timeoutMs: number; signal?: AbortSignal | undefined },
    ): Promise<ControlReply | undefined> {
      checkIdentifier(environment, 'environment', { plugin });
      checkControlId(id);
      const timeoutMs = Number.isFinite(o?.timeoutMs) && o.timeoutMs > 0 ? o.timeoutMs : 0;
      const file = join(folder(environment, 'replies'), `${id}.json`);
      const deadline = Date.now() + timeoutMs;
      const poll = Math.min(options.pollMs, 100);
      for (;;) {
        if (o.signal?.aborted) return undefined;
        try {
          return checkControlReply(await readRecord(file), id);
        } catch {
          // None yet; a damaged or foreign reply is no answer either: wait for a good one until the deadline.
        }
        const left = deadline - Date.now();
        if (left <= 0) return undefined;
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, Math.min(poll, left));
          function done() {
            clearTimeout(t);
            o.signal?.removeEventListener('abort', done);
            resolve();
          }
          o.signal?.addEventListener('abort', done, { once: true });
        });
      }
    },

    async withdraw(environment: string, id: string): Promise<boolean> {
      checkIdentifier(environment, 'environment', { plugin });
      checkControlId(id);
      try {
        await fs.rename(
          join(folder(environment, 'requests'), `${id}.json`),
          join(folder(environment, 'withdrawn'), `${id}.json`),
        );
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw new StoreError(`cannot withdraw control request ${id}`, { cause: err, plugin });
      }
    },
  };
}
