import { readFileSync } from 'node:fs';
import { ConfigInvalidError, serializeError } from '@codegraph/release-core';
import { backup } from './commands/backup.js';
import { abort, promote } from './commands/control.js';
import { history, plan, status } from './commands/inspect.js';
import { pipeline, promotePipeline } from './commands/pipeline.js';
import { recover } from './commands/recover.js';
import { deploy, resume, rollback } from './commands/run.js';
import { validate } from './commands/validate.js';
import type { CommandContext } from './context.js';
import { exitCodeOf, exitCodes } from './exit.js';
import { commandHelp, mainHelp } from './help.js';
import { type MetricsSession, startMetrics, takeMetricsFlags } from './metrics.js';
import { Output } from './output.js';

type Command = (argv: string[], ctx: CommandContext) => Promise<number>;

const commands: Record<string, Command> = {
  validate,
  plan,
  deploy,
  promote,
  abort,
  rollback,
  resume,
  status,
  history,
  backup,
  'promote-pipeline': promotePipeline,
  pipeline,
  recover,
};

/**
 * The command names `codegraph-release` knows.
 *
 * @example
 * ```ts
 * if (!commandNames.includes('deploy')) throw new Error('old CLI')
 * ```
 */
export const commandNames = Object.keys(commands);

function cliVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Options of {@link runCli}.
 *
 * @example
 * ```ts
 * await runCli(['status'], { cwd: '/srv/release' })
 * ```
 */
export interface RunCliOptions {
  /** Where the config is looked for and relative paths start. @default process.cwd() */
  cwd?: string;
}

/**
 * Runs `codegraph-release` with `argv` (without `node` and the script) and returns the exit code.
 * Errors are printed as one line naming their `CG_*` code.
 *
 * @example
 * ```ts
 * process.exitCode = await runCli(['deploy', 'v1.2.3', '--env', 'staging'])
 * ```
 */
export async function runCli(argv: readonly string[], options: RunCliOptions = {}): Promise<number> {
  const args = [...argv];
  const json = args.includes('--json');
  const out = new Output({ json });
  const ctx: CommandContext = { cwd: options.cwd ?? process.cwd(), out, stores: new Set() };
  const [name, ...rest] = args;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined;
    process.stdout.write(`${(topic && commandHelp[topic]) || mainHelp}\n`);
    return name === undefined ? exitCodes.usage : exitCodes.ok;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${cliVersion()}\n`);
    return exitCodes.ok;
  }
  const command = commands[name];
  let metrics: MetricsSession | undefined;
  try {
    if (!command)
      throw new ConfigInvalidError(
        `unknown command ${JSON.stringify(name)}; commands: ${commandNames.join(', ')} (see --help)`,
      );
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(`${commandHelp[name]}\n`);
      return exitCodes.ok;
    }
    const { rest: commandArgs, flags } = takeMetricsFlags(rest);
    metrics = await startMetrics(flags, out);
    if (metrics) ctx.metrics = metrics;
    return await command(commandArgs, ctx);
  } catch (err) {
    const code = exitCodeOf(serializeError(err).code);
    out.error(err, code);
    return code;
  } finally {
    // A database store's pool would keep the process alive: every store a command opened is closed here.
    for (const store of ctx.stores ?? []) await store.close?.().catch(() => {});
    await metrics?.finish();
  }
}
