import { ConfigInvalidError } from '@codegraph/release-core';
import { type CommandContext, openEngine, parse, positionals, versionArg } from '../context.js';
import { exitCodes } from '../exit.js';

export async function plan(argv: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals: pos } = parse('plan', argv, { strategy: { type: 'string' } });
  const [version] = positionals('plan', pos, ['version']);
  versionArg('version', version);
  const open = await openEngine(ctx, values, values.strategy);
  try {
    const p = await open.engine.plan({ version: version! });
    const { out } = ctx;
    out.line(
      `[${p.environment}] plan: ${p.strategy} release of ${p.version}${p.from ? ` from ${p.from}` : ''}, ${p.replicas} replica(s)`,
    );
    for (const [i, s] of p.steps.entries()) out.line(`  ${String(i + 1).padStart(2)}. ${s}`);
    out.line(`${p.steps.length} action(s); nothing was changed`);
    out.json({ type: 'result', command: 'plan', exitCode: exitCodes.ok, plan: p });
    return exitCodes.ok;
  } finally {
    await open.close();
  }
}

export async function status(argv: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals: pos } = parse('status', argv, {});
  positionals('status', pos, []);
  const open = await openEngine(ctx, values);
  try {
    const [s, described] = await Promise.all([
      open.engine.status(),
      open.environment.options.target.describe(),
    ]);
    const { out } = ctx;
    const endpoint = described.endpoint;
    out.line(`[${s.environment}] serving ${s.serving ?? 'nothing'}${endpoint ? ` at ${endpoint}` : ''}`);
    for (const p of s.pools)
      out.line(`  pool ${p.name}: ${p.version}, ${p.ready}/${p.replicas} ready, weight ${p.weight}%`);
    out.line(
      s.lock
        ? `  locked by run ${s.lock.runId} (pid ${s.lock.pid} on ${s.lock.host} since ${s.lock.since})`
        : '  not locked',
    );
    for (const r of s.interrupted)
      out.line(
        out.paint(
          `  interrupted: ${r.kind} ${r.version}, run ${r.runId}: codegraph-release resume ${r.runId} (or rollback)`,
          'yellow',
        ),
      );
    if (s.lastRun)
      out.line(
        `  last run: ${s.lastRun.kind} ${s.lastRun.version} ${s.lastRun.status ?? 'running'} (${s.lastRun.runId})`,
      );
    out.json({ type: 'result', command: 'status', exitCode: exitCodes.ok, status: { ...s, endpoint } });
    return exitCodes.ok;
  } finally {
    await open.close();
  }
}

export async function history(argv: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals: pos } = parse('history', argv, { limit: { type: 'string' } });
  positionals('history', pos, []);
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1))
    throw new ConfigInvalidError(`--limit must be an integer >= 1, got ${JSON.stringify(values.limit)}`);
  const open = await openEngine(ctx, values);
  try {
    const all = await open.engine.history();
    const shown = limit === undefined ? all : all.slice(-limit);
    const { out } = ctx;
    if (shown.length === 0) out.line(`[${open.environment.name}] no finished runs yet`);
    for (const h of shown) {
      const verdicts = Object.entries(h.verdicts)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      out.line(
        `${h.finishedAt}  ${h.kind.padEnd(8)} ${h.version.padEnd(12)} ${h.status.padEnd(11)} serving ${(h.serving ?? '-').padEnd(12)} ${h.runId}${verdicts ? `  ${verdicts}` : ''}${h.reason ? `  (${h.reason})` : ''}`,
      );
    }
    out.json({ type: 'result', command: 'history', exitCode: exitCodes.ok, history: shown });
    return exitCodes.ok;
  } finally {
    await open.close();
  }
}
