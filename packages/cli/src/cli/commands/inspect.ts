import { ConfigInvalidError } from '@codegraph/release-core';
import { type CommandContext, openEngine, parse, positionals, versionArg } from '../context.js';
import { exitCodes } from '../exit.js';
import { durationMs } from './run.js';
import { watchRun } from './watch.js';

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
  const { values, positionals: pos } = parse('status', argv, {
    watch: { type: 'boolean' },
    interval: { type: 'string' },
    timeout: { type: 'string' },
  });
  positionals('status', pos, []);
  const intervalMs = values.interval === undefined ? 1000 : durationMs('--interval', values.interval);
  const timeoutMs = values.timeout === undefined ? 3_600_000 : durationMs('--timeout', values.timeout);
  const open = await openEngine(ctx, values);
  try {
    if (values.watch) {
      // Follow the running run (else the last one) from its journal, polling the store: bounded by --timeout.
      const s = await open.engine.status();
      const runId = s.lock?.runId ?? s.interrupted.at(-1)?.runId ?? s.lastRun?.runId;
      if (!runId) {
        ctx.out.line(`[${s.environment}] no run to watch`);
        ctx.out.json({ type: 'result', command: 'status', exitCode: exitCodes.ok, watched: null });
        return exitCodes.ok;
      }
      const code = await watchRun(open.environment.options.store, runId, ctx.out, { intervalMs, timeoutMs });
      ctx.out.json({ type: 'result', command: 'status', exitCode: code, watched: runId });
      return code;
    }
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
        `  last run: ${s.lastRun.kind} ${s.lastRun.version} ${s.lastRun.status ?? (s.lock?.runId === s.lastRun.runId ? 'running' : 'interrupted')} (${s.lastRun.runId})`,
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
