import { ConfigInvalidError } from '@codegraph/release-core';
import { pickEnvironment } from '../../config/environment.js';
import { loadConfig } from '../../config/load.js';
import { type CommandContext, parse, positionals } from '../context.js';
import { controlDir, sendControl } from '../control.js';
import { exitCodes } from '../exit.js';

const defaultTimeoutMs = 10_000;

function timeout(raw: string | undefined): number {
  if (raw === undefined) return defaultTimeoutMs;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 100)
    throw new ConfigInvalidError(`--timeout-ms must be an integer >= 100, got ${JSON.stringify(raw)}`);
  return n;
}

async function send(action: 'promote' | 'abort', argv: string[], ctx: CommandContext): Promise<number> {
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
  // Only the config's stateDir and the environment's name are needed: the engine lives in the deploy process.
  const loaded = await loadConfig(ctx.cwd, values.config);
  const environment = pickEnvironment(loaded, values.env);
  const reply = await sendControl(
    controlDir(loaded.stateDir, environment),
    environment,
    { action, runId, full: values.full, reason: values.reason },
    ms,
  );
  const { out } = ctx;
  if (!reply.applied) {
    out.line(`run ${reply.runId} was finishing: nothing to ${action}`);
  } else if (action === 'promote') {
    out.line(`promoted run ${reply.runId}${values.full ? ' fully (remaining steps skipped)' : ''}`);
  } else {
    out.line(`aborted run ${reply.runId}: its deploy is undoing it`);
  }
  const code = reply.applied ? exitCodes.ok : exitCodes.notFound;
  out.json({ type: 'result', command: action, exitCode: code, ...reply });
  return code;
}

export const promote = (argv: string[], ctx: CommandContext) => send('promote', argv, ctx);
export const abort = (argv: string[], ctx: CommandContext) => send('abort', argv, ctx);
