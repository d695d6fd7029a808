import { resolve } from 'node:path';
import {
  ConfigInvalidError,
  type ReleaseEngine,
  RollbackUnconfirmedError,
  type RunResult,
} from '@codegraph/release-core';
import {
  type CommandContext,
  type OpenEngine,
  openEngine,
  pairs,
  parse,
  positionals,
  versionArg,
} from '../context.js';
import { exitCodeOfRun, exitCodes } from '../exit.js';
import type { Output } from '../output.js';
import { startReport } from '../report.js';

type Values = { config?: string | undefined; env?: string | undefined; verbose?: boolean | undefined };

/** The summary line of a finished run. */
function summary(r: RunResult, out: Output): string {
  const took = `${(r.durationMs / 1000).toFixed(1)}s`;
  const serving = r.serving ? `${r.serving} serves` : 'nothing serves';
  switch (r.status) {
    case 'succeeded':
      return out.paint(
        `succeeded: ${r.version} released and verified in ${r.environment}, ${serving} (${took}, run ${r.runId})`,
        'green',
      );
    case 'rolled-back':
      return out.paint(
        `rolled back: ${r.version} was undone, ${serving} (${r.reason ?? 'no reason'}; ${took}, run ${r.runId})`,
        'yellow',
      );
    case 'failed':
      return out.paint(
        `FAILED: ${r.reason ?? r.error?.message ?? 'unknown'}; ${serving}; a human must look (run ${r.runId}, ${took})`,
        'red',
      );
    case 'superseded':
      return `superseded: ${r.reason ?? ''} (run ${r.runId})`;
  }
}

/**
 * Runs one engine call with live output, promote/abort control, Ctrl-C as abort and an optional
 * report; returns the exit code.
 */
export async function drive(
  ctx: CommandContext,
  open: OpenEngine,
  command: string,
  reportDir: string | undefined,
  start: (engine: ReleaseEngine) => Promise<RunResult>,
  timeoutMs?: number,
): Promise<number> {
  const { engine, environment } = open;
  const { out } = ctx;
  const stopEvents = engine.on('*', (e) => out.event(e));
  const report = startReport(engine, reportDir && resolve(ctx.cwd, reportDir), {
    target: environment.options.target,
    secrets: environment.secrets,
  });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      out.warn(`${signal} again: exiting now; the run is interrupted (resume it or roll back)`);
      process.exit(exitCodes.interrupted);
    }
    out.warn(`${signal}: aborting the run; it is being undone (${signal} again to exit at once)`);
    engine.abort(undefined, `interrupted by ${signal}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // `--timeout`: the run is aborted (and so undone, like Ctrl-C) once it has taken this long.
  const deadline =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          out.warn(`--timeout of ${timeoutMs / 1000}s passed: aborting the run; it is being undone`);
          engine.abort(undefined, `deploy --timeout: the run took longer than ${timeoutMs / 1000}s`);
        }, timeoutMs);
  try {
    const result = await start(engine);
    // The run released its lock already; its last notifications are reported before the result.
    await engine.drain();
    const code = exitCodeOfRun(result.status);
    const reportFile = report ? await report.finish() : undefined;
    if (reportFile) out.line(`report: ${reportFile}`);
    out.line(summary(result, out));
    // CI logs get the code on stderr too: what failed, in one line, whatever the mode.
    if (result.status !== 'succeeded')
      out.warn(
        `${result.error?.code ?? 'CG_ERROR'}: ${result.status}: ${result.reason ?? 'no reason recorded'}`,
      );
    out.json({
      type: 'result',
      command,
      exitCode: code,
      result,
      ...(reportFile ? { report: reportFile } : {}),
    });
    return code;
  } finally {
    clearTimeout(deadline);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    stopEvents();
    await report?.cancel();
    await open.close();
  }
}

export async function deploy(argv: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals: pos } = parse('deploy', argv, {
    strategy: { type: 'string' },
    reason: { type: 'string' },
    label: { type: 'string', multiple: true },
    report: { type: 'string' },
    timeout: { type: 'string' },
  });
  const [version] = positionals('deploy', pos, ['version']);
  versionArg('version', version);
  const labels = pairs('label', values.label);
  const timeoutMs = values.timeout === undefined ? undefined : durationMs('--timeout', values.timeout);
  const open = await openEngine(ctx, values as Values, values.strategy);
  return drive(
    ctx,
    open,
    'deploy',
    values.report,
    (engine) =>
      engine.release({
        version: version!,
        ...(values.reason !== undefined ? { reason: values.reason } : {}),
        ...(Object.keys(labels).length ? { labels } : {}),
      }),
    timeoutMs,
  );
}

/**
 * Parses a duration such as `90s`, `30m`, `1h30m` or `500ms` (a bare number is seconds) into
 * milliseconds; anything else, zero, or more than a week is a `ConfigInvalidError` before anything runs.
 */
export function durationMs(flag: string, text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let ms = Number.NaN;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1000;
  else if (/^(\d+(ms|s|m|h))+$/.test(text)) {
    ms = 0;
    for (const m of text.matchAll(/(\d+)(ms|s|m|h)/g)) ms += Number(m[1]) * units[m[2]!]!;
  }
  if (!(ms > 0 && ms <= 7 * 86_400_000))
    throw new ConfigInvalidError(
      `${flag} must be a duration like 90s, 30m or 1h30m (at most a week), got ${JSON.stringify(text)}; nothing was changed`,
    );
  return ms;
}

export async function resume(argv: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals: pos } = parse('resume', argv, { report: { type: 'string' } });
  const [runId] = positionals('resume', pos, ['runId']);
  // The run is replayed with the strategy its journal names, whatever the environment's default is.
  const probe = await openEngine(ctx, values as Values);
  let strategy: string | undefined;
  try {
    const head = (await probe.environment.options.store.read(runId!)).find((e) => e.type === 'run');
    strategy = head?.type === 'run' ? head.header.strategy : undefined;
  } finally {
    await probe.close();
  }
  const open = await openEngine(ctx, values as Values, strategy);
  return drive(ctx, open, 'resume', values.report, (engine) => engine.resume(runId!));
}

export async function rollback(argv: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals: pos } = parse('rollback', argv, {
    to: { type: 'string' },
    confirm: { type: 'string' },
    reason: { type: 'string' },
    report: { type: 'string' },
  });
  positionals('rollback', pos, []);
  // Checked before the config is even loaded: a refused rollback touches nothing.
  if (values.confirm !== 'CONFIRM') {
    throw new RollbackUnconfirmedError(
      `an emergency rollback needs --confirm CONFIRM (exactly, in capitals)${values.confirm === undefined ? '' : `, got ${JSON.stringify(values.confirm)}`}; nothing was changed`,
    );
  }
  if (!values.to)
    throw new ConfigInvalidError(
      'rollback needs --to <version> (see `codegraph-release history`); nothing was changed',
    );
  versionArg('--to', values.to);
  if (!values.reason?.trim())
    throw new ConfigInvalidError(
      'rollback needs --reason <text> for the incident report; nothing was changed',
    );
  const open = await openEngine(ctx, values as Values);
  return drive(ctx, open, 'rollback', values.report, (engine) =>
    engine.rollback({ to: values.to!, reason: values.reason!, confirm: values.confirm! }),
  );
}
