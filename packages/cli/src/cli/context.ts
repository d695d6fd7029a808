import { parseArgs } from 'node:util';
import {
  ConfigInvalidError,
  consoleLogger,
  createReleaseEngine,
  type Logger,
  type ReleaseEngine,
  type Store,
  silentLogger,
  toLogger,
} from '@codegraph/release-core';
import { checkIdentifier, checkText, checkVersion } from '@codegraph/release-core/kit';
import { type ResolvedEnvironment, resolveEnvironment } from '../config/environment.js';
import { type LoadedConfig, loadConfig } from '../config/load.js';
import type { MetricsSession } from './metrics.js';
import type { Output } from './output.js';

/** What every command receives. */
export interface CommandContext {
  cwd: string;
  out: Output;
  /** Set by `--metrics-port` / `--pushgateway`: engines register their metrics there. */
  metrics?: MetricsSession;
  /** The stores the command's engines used, closed once when the command ends (a database pool, say). */
  stores?: Set<Store>;
}

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

/** Options every command takes. */
export const commonOptions = {
  config: { type: 'string', short: 'c' },
  env: { type: 'string', short: 'e' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Record<string, OptionSpec>;

type All<O> = O & typeof commonOptions;
/** The parsed values of options `O` plus the common ones. */
export type ParsedValues<O> = {
  [K in keyof All<O>]?: All<O>[K] extends { type: 'boolean' }
    ? boolean
    : All<O>[K] extends { multiple: true }
      ? string[]
      : string;
};

/** `node:util` parseArgs with our options; an unknown flag is `CG_CONFIG_INVALID` naming it. */
export function parse<const O extends Record<string, OptionSpec>>(
  command: string,
  argv: string[],
  options: O,
): { values: ParsedValues<O>; positionals: string[] } {
  try {
    const parsed = parseArgs({
      args: argv,
      options: { ...commonOptions, ...options },
      allowPositionals: true,
      strict: true,
    });
    checkInputs(command, parsed.values, parsed.positionals);
    return { values: parsed.values as ParsedValues<O>, positionals: parsed.positionals };
  } catch (err) {
    if (err instanceof ConfigInvalidError) throw err;
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ConfigInvalidError(`${command}: ${message}; see codegraph-release ${command} --help`);
  }
}

/** Flags with a rule of their own, checked before anything is loaded (core's rules, checked again by the engine). */
const flagRules: Record<string, (value: string, what: string) => unknown> = {
  env: (v, what) => checkIdentifier(v, what),
  to: (v, what) => checkVersion(v, what),
  reason: (v, what) => checkText(v, what),
};

/**
 * Every control input is one line of bounded text (no control characters that could forge a log or
 * journal line); `--env`, `--to` and `--reason` follow their own rule. Nothing was changed when it throws.
 */
function checkInputs(command: string, values: Record<string, unknown>, given: string[]): void {
  for (const [flag, raw] of Object.entries(values)) {
    for (const value of Array.isArray(raw) ? raw : [raw]) {
      // An empty value is left to the command, which says what it needs (e.g. `--confirm CONFIRM`).
      if (typeof value !== 'string' || value === '') continue;
      const what = `${command} --${flag}`;
      checkText(value, what);
      flagRules[flag]?.(value, what);
    }
  }
  for (const value of given) if (value !== '') checkText(value, `${command} argument`);
}

/** Exactly `count` positionals (named for the error). */
export function positionals(command: string, given: string[], names: string[], optional = 0): string[] {
  if (given.length > names.length || given.length < names.length - optional) {
    throw new ConfigInvalidError(
      `${command} takes ${names.map((n) => `<${n}>`).join(' ')}, got ${given.length ? given.join(' ') : 'nothing'}; see codegraph-release ${command} --help`,
    );
  }
  return given;
}

/** Checks a version argument before the config is loaded (core's rule, checked again by the engine). */
export function versionArg(what: string, value: string | undefined): string {
  return checkVersion(value ?? '', what);
}

/** A logger that writes redacted lines to stderr when `--verbose`, else nothing. */
export function cliLogger(out: Output, verbose: boolean | undefined): Logger {
  if (!verbose) return silentLogger;
  return toLogger(consoleLogger({ level: 'debug', stream: process.stderr }), out.redactor);
}

/** An environment's engine, built from the config, and how to let go of it. */
export interface OpenEngine {
  engine: ReleaseEngine;
  environment: ResolvedEnvironment;
  loaded: LoadedConfig;
  close(): Promise<void>;
}

/** Loads the config, builds the environment and its engine; every problem is `CG_CONFIG_INVALID`. */
export async function openEngine(
  ctx: CommandContext,
  values: { config?: string | undefined; env?: string | undefined; verbose?: boolean | undefined },
  strategy?: string,
): Promise<OpenEngine> {
  const loaded = await loadConfig(ctx.cwd, values.config);
  let files = 0;
  let bytes = 0;
  const environment = await resolveEnvironment(loaded, values.env, {
    logger: cliLogger(ctx.out, values.verbose),
    strategy,
    backupProgress: (file) => {
      files++;
      bytes += file.size;
      ctx.out.transient(
        `    backing up: ${files} file(s), ${(bytes / 1024 / 1024).toFixed(1)} MB, ${file.path}`,
      );
    },
  });
  ctx.out.addSecrets(environment.secrets);
  const { options } = environment;
  const engine = createReleaseEngine(
    ctx.metrics ? { ...options, metrics: options.metrics || { registry: ctx.metrics.registry } } : options,
  );
  ctx.metrics?.attach(engine);
  ctx.stores?.add(options.store);
  return {
    engine,
    environment,
    loaded,
    async close() {
      await engine.close();
      await environment.options.target.close?.();
    },
  };
}

/** `key=value` pairs of a repeated flag. */
export function pairs(flag: string, list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const i = item.indexOf('=');
    if (i <= 0) throw new ConfigInvalidError(`--${flag} takes key=value, got ${JSON.stringify(item)}`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}
