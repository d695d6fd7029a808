import {
  ConfigInvalidError,
  type ControlAction,
  type ControlReply,
  createRedactor,
  RunNotFoundError,
  silentLogger,
  TimeoutError,
} from '@codegraph/release-core';
import { resolveEnvironment } from '../../config/environment.js';
import { loadConfig } from '../../config/load.js';
import { type CommandContext, parse, positionals } from '../context.js';
import { exitCodes } from '../exit.js';

const defaultTimeoutMs = 10_000;
// After a request was consumed, its answer follows within a poll or two: wait this much longer for it.
const consumedGraceMs = 2_000;

function timeout(raw: string | undefined): number {
  if (raw === undefined) return defaultTimeoutMs;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 100)
    throw new ConfigInvalidError(`--timeout-ms must be an integer >= 100, got ${JSON.stringify(raw)}`);
  return n;
}

/**
 * Sends promote/abort to the run holding the environment, through the environment's store (files in
 * the state dir, or a shared database): any host that reaches the store reaches the run.
 */
async function send(
  action: Extract<ControlAction, 'promote' | 'abort'>,
  argv: string[],
  ctx: CommandContext,
): Promise<number> {
  const { values, positionals: pos } = parse(action, argv, {
    full: { type: 'boolean' },
    reason: { type: 'string' },
    'timeout-ms': { type: 'string' },
  });
  const [runId] = positionals(action, pos, ['runId'], 1);
  if (action === 'abort' && values.full) throw new ConfigInvalidError('abort does not take --full');
  if (action === 'promote' && values.reason !== undefined)
    throw new ConfigInvalidError('promote does not take --reason');
  const ms = timeout(values['timeout-ms']);
  const loaded = await loadConfig(ctx.cwd, values.config);
  const environment = await resolveEnvironment(loaded, values.env, { logger: silentLogger });
  const { store, target } = environment.options;
  const env = environment.name;
  try {
    const holder = await store.lockOwner(env);
    if (!holder || (runId !== undefined && holder.runId !== runId)) {
      throw new RunNotFoundError(
        runId
          ? `run ${runId} is not running in ${env}${holder ? ` (run ${holder.runId} is)` : ''}; nothing to ${action}`
          : `no deploy is running in ${env}: nothing to ${action}`,
      );
    }
    const request = await store.sendControl({
      environment: env,
      runId: holder.runId,
      action,
      ...(values.full ? { full: true } : {}),
      // Stored where other processes read it: the environment's secrets never go into it.
      ...(values.reason !== undefined
        ? { reason: createRedactor(environment.secrets).string(values.reason) }
        : {}),
    });
    let reply: ControlReply | undefined = await store.waitForReply(env, request.id, { timeoutMs: ms });
    if (!reply) {
      if (await store.withdrawControl(env, request.id)) {
        throw new TimeoutError(
          `the deploy of run ${holder.runId} (pid ${holder.pid} on ${holder.host}) did not take the ${action} request within ${ms} ms; it was withdrawn, nothing was done`,
        );
      }
      reply = await store.waitForReply(env, request.id, { timeoutMs: consumedGraceMs });
      if (!reply) {
        throw new TimeoutError(
          `the deploy of run ${holder.runId} took the ${action} request but did not answer; look at its output or its journal`,
        );
      }
    }
    const { out } = ctx;
    const who = reply.runId ?? holder.runId;
    if (!reply.applied) {
      out.line(`run ${who} did not ${action}: ${reply.message ?? 'it was finishing'}`);
    } else if (action === 'promote') {
      out.line(`promoted run ${who}${values.full ? ' fully (remaining steps skipped)' : ''}`);
    } else {
      out.line(`aborted run ${who}: its deploy is undoing it`);
    }
    const code = reply.applied ? exitCodes.ok : exitCodes.notFound;
    out.json({ type: 'result', command: action, exitCode: code, ...reply, runId: who });
    return code;
  } finally {
    await target.close?.();
    await store.close?.();
  }
}

export const promote = (argv: string[], ctx: CommandContext) => send('promote', argv, ctx);
export const abort = (argv: string[], ctx: CommandContext) => send('abort', argv, ctx);
