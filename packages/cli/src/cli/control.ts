import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type ReleaseEngine, RunNotFoundError, TimeoutError } from '@codegraph/release-core';

// promote/abort from another process. The engine's promote()/abort() are in-process, so the deploy
// process that runs the engine watches a control directory in the state dir:
//   control/<env>/<runId>.run.json          written by deploy while its run is live (pid, host)
//   control/<env>/<id>.request.json         written by `promote`/`abort` (atomically, by rename)
//   control/<env>/<id>.reply.json           written by deploy once the request is applied
// Polling (not fs.watch) works the same on every filesystem, including a shared one.

/** A live deploy as its control file describes it. */
export interface RunningRun {
  runId: string;
  pid: number;
  host: string;
  startedAt: string;
}

/** What `promote`/`abort` ask the deploy process to do. */
export interface ControlRequest {
  id: string;
  action: 'promote' | 'abort';
  runId?: string | undefined;
  full?: boolean | undefined;
  reason?: string | undefined;
}

/** What the deploy process answers. */
export interface ControlReply {
  id: string;
  runId: string;
  action: 'promote' | 'abort';
  /** Whether the engine still had the run active. */
  applied: boolean;
}

/** How often both sides look at the directory. */
export const controlPollMs = 150;

export const controlDir = (stateDir: string, environment: string) => join(stateDir, 'control', environment);

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

async function writeAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(value), { mode: 0o600 });
  await rename(tmp, file);
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The deploy side: announces the run and applies requests until stopped. */
export async function watchControl(
  dir: string,
  runId: string,
  engine: Pick<ReleaseEngine, 'promote' | 'abort'>,
  onApplied: (reply: ControlReply, request: ControlRequest) => void,
): Promise<{ stop(): Promise<void> }> {
  await mkdir(dir, { recursive: true });
  const runFile = join(dir, `${runId}.run.json`);
  const me: RunningRun = { runId, pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  await writeAtomic(runFile, me);
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      for (const name of await readdir(dir)) {
        if (!name.endsWith('.request.json')) continue;
        const file = join(dir, name);
        const req = await readJson<ControlRequest>(file);
        if (!req || (req.runId !== undefined && req.runId !== runId)) continue;
        const applied =
          req.action === 'promote'
            ? engine.promote(runId, { full: req.full === true })
            : engine.abort(runId, req.reason ?? 'aborted by operator');
        const reply: ControlReply = { id: req.id, runId, action: req.action, applied };
        await writeAtomic(join(dir, `${req.id}.reply.json`), reply);
        await rm(file, { force: true });
        onApplied(reply, req);
      }
    } catch {
      // the directory was removed or a file vanished between readdir and read: next tick
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), controlPollMs);
  return {
    async stop() {
      clearInterval(timer);
      while (busy) await new Promise((r) => setTimeout(r, 10));
      await rm(runFile, { force: true });
    },
  };
}

/** Live deploys of an environment (a control file whose process on this host is gone is ignored). */
export async function runningRuns(dir: string): Promise<RunningRun[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: RunningRun[] = [];
  for (const name of names.filter((n) => n.endsWith('.run.json'))) {
    const run = await readJson<RunningRun>(join(dir, name));
    if (run && (run.host !== hostname() || alive(run.pid))) out.push(run);
  }
  return out;
}

/** The client side: sends a request to the live deploy and waits for its reply. */
export async function sendControl(
  dir: string,
  environment: string,
  request: Omit<ControlRequest, 'id'>,
  timeoutMs: number,
): Promise<ControlReply> {
  const live = await runningRuns(dir);
  const target = request.runId ? live.find((r) => r.runId === request.runId) : live[0];
  if (!target) {
    throw new RunNotFoundError(
      request.runId
        ? `run ${request.runId} is not running in ${environment} (is its deploy using the same stateDir?)`
        : `no deploy is running in ${environment}: nothing to ${request.action}`,
    );
  }
  const id = `${Date.now()}-${randomBytes(4).toString('hex')}`;
  const reqFile = join(dir, `${id}.request.json`);
  const replyFile = join(dir, `${id}.reply.json`);
  await writeAtomic(reqFile, { ...request, id, runId: target.runId } satisfies ControlRequest);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const reply = await readJson<ControlReply>(replyFile);
    if (reply) {
      await rm(replyFile, { force: true });
      return reply;
    }
    await new Promise((r) => setTimeout(r, controlPollMs));
  }
  await rm(reqFile, { force: true });
  throw new TimeoutError(
    `the deploy of run ${target.runId} (pid ${target.pid} on ${target.host}) did not answer within ${timeoutMs} ms; nothing was sent`,
  );
}
