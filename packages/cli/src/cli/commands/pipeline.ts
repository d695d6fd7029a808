import { userInfo } from 'node:os';
import { join } from 'node:path';
import {
  approvePipeline,
  ConfigInvalidError,
  fileStore,
  type PipelineEvent,
  type PipelineStatus,
} from '@codegraph/release-core';
import { loadConfig } from '../../config/load.js';
import { buildPipeline, pickPipeline } from '../../config/pipeline.js';
import { pipelineReportInput, writePipelineReport } from '../../report/pipeline.js';
import { type CommandContext, cliLogger, parse, positionals, versionArg } from '../context.js';
import { exitCodeOfRun, exitCodes } from '../exit.js';
import type { Output } from '../output.js';

const pipelineOption = { pipeline: { type: 'string', short: 'p' } } as const;

async function open(
  ctx: CommandContext,
  values: { config?: string | undefined; pipeline?: string | undefined; verbose?: boolean | undefined },
) {
  const loaded = await loadConfig(ctx.cwd, values.config);
  const built = await buildPipeline(loaded, values.pipeline, cliLogger(ctx.out, values.verbose));
  ctx.out.addSecrets(built.secrets);
  return { loaded, ...built };
}

function eventLine(e: PipelineEvent): string | undefined {
  switch (e.type) {
    case 'pipeline.started':
      return `pipeline ${e.pipeline}: ${e.resumed ? 'continuing' : 'promoting'} ${e.version} through ${e.stages.join(' → ')} (run ${e.runId})`;
    case 'pipeline.waiting':
      return `  ${e.stage} waits for ${e.waitingFor.map((w) => `${w.detail}${w.until ? ` (until ${w.until})` : ''}`).join('; ')}`;
    case 'pipeline.approval':
      return `  approval ${e.applied ? 'recorded' : 'refused'}: ${e.message}`;
    case 'pipeline.stage.started':
      return `  ${e.stage}: ${e.resumed ? 'continuing its release' : 'releasing'} ${e.version}`;
    case 'pipeline.stage.gate':
      return `  ${e.stage}: pipeline gate ${e.result.verdict} (${e.result.reason})`;
    case 'pipeline.stage.finished':
      return `  ${e.stage}: ${e.status}${e.serving ? `, serving ${e.serving}` : ''}${e.reason ? ` (${e.reason})` : ''}`;
    case 'pipeline.finished':
      return `pipeline ${e.pipeline}: ${e.version} ${e.status}${e.reached ? `, reached ${e.reached}` : ''}${e.reason ? ` (${e.reason})` : ''}`;
    default:
      return undefined;
  }
}

function printStatus(out: Output, s: PipelineStatus): void {
  const run = s.run;
  out.line(
    run
      ? `pipeline ${s.pipeline}: ${run.version} ${run.state}${run.status ? ` (${run.status})` : ''}, run ${run.runId}${run.owner ? ` held by pid ${run.owner.pid} on ${run.owner.host}` : ''}`
      : `pipeline ${s.pipeline}: no run yet`,
  );
  for (const st of s.stages) {
    out.line(`  ${st.stage} (${st.environment}): serving ${st.serving ?? 'nothing'}, ${st.state}`);
    for (const w of st.waitingFor)
      out.line(`    waits for ${w.gate}: ${w.detail}${w.until ? ` until ${w.until}` : ''}`);
    if (st.approvals.length)
      out.line(`    approvals: ${st.approvals.map((a) => `${a.by} at ${a.at}`).join(', ')}`);
  }
  if (run?.state === 'interrupted') {
    out.line(
      out.paint(
        `  interrupted: codegraph-release pipeline resume${s.pipeline ? ` -p ${s.pipeline}` : ''}`,
        'yellow',
      ),
    );
  }
}

/** `promote-pipeline <version>`: promotes through every stage, waiting for soak, windows and approvals. */
export async function promotePipeline(argv: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals: pos } = parse('promote-pipeline', argv, {
    ...pipelineOption,
    reason: { type: 'string' },
    report: { type: 'string' },
  });
  const [version] = positionals('promote-pipeline', pos, ['version']);
  versionArg('version', version);
  return drive(ctx, values, version);
}

async function drive(
  ctx: CommandContext,
  values: {
    config?: string | undefined;
    pipeline?: string | undefined;
    verbose?: boolean | undefined;
    reason?: string | undefined;
    report?: string | undefined;
  },
  version: string | undefined,
): Promise<number> {
  const { out } = ctx;
  const opened = await open(ctx, values);
  const ac = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    out.warn(`${signal}: stopping; a stage in flight is undone, a waiting pipeline can be resumed`);
    ac.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const off = opened.pipeline.on('*', (e) => {
    out.json(e);
    const line = eventLine(e);
    if (line) out.line(line);
  });
  try {
    const result =
      version === undefined
        ? await opened.pipeline.resume({ signal: ac.signal })
        : await opened.pipeline.promote(version, {
            signal: ac.signal,
            ...(values.reason ? { reason: values.reason } : {}),
          });
    const file = values.report ?? join(opened.loaded.stateDir, 'reports', `pipeline-${result.runId}.html`);
    await writePipelineReport(file, await pipelineReportInput(opened.pipeline, opened.store));
    out.line(`report: ${file}`);
    const code = exitCodeOfRun(result.status);
    out.json({ type: 'result', command: 'promote-pipeline', exitCode: code, result, report: file });
    return code;
  } finally {
    off();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await opened.close();
  }
}

/** `pipeline status|plan|approve|resume|report`. */
export async function pipeline(argv: string[], ctx: CommandContext): Promise<number> {
  const [sub, ...rest] = argv;
  const { out } = ctx;
  if (sub === 'approve') {
    const { values, positionals: pos } = parse('pipeline approve', rest, {
      ...pipelineOption,
      by: { type: 'string' },
      'timeout-ms': { type: 'string' },
    });
    const [stage, version] = positionals('pipeline approve', pos, ['stage', 'version']);
    versionArg('version', version);
    const by = values.by ?? process.env.CODEGRAPH_RELEASE_APPROVER ?? userInfo().username;
    const timeoutMs = values['timeout-ms'] === undefined ? 30_000 : Number(values['timeout-ms']);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 100)
      throw new ConfigInvalidError('--timeout-ms must be an integer >= 100');
    // Only the store is needed: the pipeline runs in another process, maybe on another host.
    const loaded = await loadConfig(ctx.cwd, values.config);
    const [name, config] = pickPipeline(loaded, values.pipeline);
    const store = config.store ?? fileStore({ dir: loaded.stateDir });
    const answer = await approvePipeline(store, {
      pipeline: name,
      stage: stage!,
      version: version!,
      by,
      timeoutMs,
    });
    const code = answer?.applied ? exitCodes.ok : answer ? exitCodes.failed : exitCodes.notFound;
    out.line(
      answer
        ? `${answer.applied ? 'approved' : 'refused'}: ${answer.message ?? ''}`
        : `no pipeline ${name} answered within ${timeoutMs} ms; the approval was withdrawn`,
    );
    out.json({ type: 'result', command: 'pipeline approve', exitCode: code, answer: answer ?? null });
    return code;
  }
  if (sub === 'resume') {
    const { values, positionals: pos } = parse('pipeline resume', rest, {
      ...pipelineOption,
      report: { type: 'string' },
    });
    positionals('pipeline resume', pos, []);
    return drive(ctx, values, undefined);
  }
  if (sub !== 'status' && sub !== 'plan' && sub !== 'report') {
    throw new ConfigInvalidError(
      `pipeline takes status, plan <version>, approve <stage> <version>, resume or report; got ${JSON.stringify(sub ?? '')}`,
    );
  }
  const { values, positionals: pos } = parse(`pipeline ${sub}`, rest, {
    ...pipelineOption,
    out: { type: 'string' },
  });
  const [version] = positionals(`pipeline ${sub}`, pos, sub === 'plan' ? ['version'] : []);
  if (sub === 'plan') versionArg('version', version);
  const opened = await open(ctx, values);
  try {
    if (sub === 'status') {
      const s = await opened.pipeline.status();
      printStatus(out, s);
      out.json({ type: 'result', command: 'pipeline status', exitCode: exitCodes.ok, status: s });
    } else if (sub === 'plan') {
      const p = await opened.pipeline.plan(version!);
      out.line(`pipeline ${p.pipeline}: plan for ${p.version}; nothing was changed`);
      for (const st of p.stages) {
        out.line(
          `  ${st.stage}: earliest start ${st.earliestStart ?? 'none within a year'}, ${st.plan.steps.length} action(s) (${st.plan.strategy})`,
        );
        for (const c of st.constraints) out.line(`    ${c}`);
        if (st.exposure) out.line(`    exposure: ${JSON.stringify(st.exposure)}`);
      }
      out.json({ type: 'result', command: 'pipeline plan', exitCode: exitCodes.ok, plan: p });
    } else {
      const file =
        values.out ?? join(opened.loaded.stateDir, 'reports', `pipeline-${opened.pipeline.name}.html`);
      await writePipelineReport(file, await pipelineReportInput(opened.pipeline, opened.store));
      out.line(`report: ${file}`);
      out.json({ type: 'result', command: 'pipeline report', exitCode: exitCodes.ok, report: file });
    }
    return exitCodes.ok;
  } finally {
    await opened.close();
  }
}
