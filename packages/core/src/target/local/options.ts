import path from 'node:path';
import { ConfigInvalidError } from '../../errors.js';
import { checkPoolName, checkReplicas, checkText, checkVersion } from '../../rules.js';

/**
 * What {@link LocalTargetOptions.command} receives for each replica it must start.
 *
 * @example
 * ```ts
 * const command = ({ version, pool, port, index }: ReplicaCommandInput) => ({
 *   command: 'codegraph-api',
 *   args: ['--port', String(port), '--instance', `${pool}-${index}`, '--build', version],
 * })
 * ```
 */
export interface ReplicaCommandInput {
  /** The version the pool runs. */
  version: string;
  /** The pool's name. */
  pool: string;
  /** The loopback port the replica must listen on (also passed as the `PORT` environment variable). */
  port: number;
  /** The replica's index in its pool, from 0. */
  index: number;
}

/**
 * How to start one replica: a program, its arguments, extra environment and working directory.
 *
 * @example
 * ```ts
 * const spec: ReplicaCommand = {
 *   command: '/opt/codegraph/v1.2.3/bin/codegraph-api',
 *   args: ['--port', '41234'],
 *   env: { API_KEY: process.env.CODEGRAPH_API_KEY ?? '' },
 * }
 * ```
 */
export interface ReplicaCommand {
  /** The program to run, e.g. `process.execPath` or `/opt/codegraph/bin/codegraph-api`. */
  command: string;
  /** @default [] */
  args?: string[];
  /**
   * Added to this process's environment (values are redacted from error messages); `undefined` values
   * are left out, so `{ API_KEY: process.env.API_KEY }` works. @default {}
   */
  env?: Record<string, string | undefined>;
  /** @default the engine's working directory */
  cwd?: string;
}

/**
 * Options of {@link localTarget}.
 *
 * @example
 * ```ts
 * const options: LocalTargetOptions = {
 *   stateDir: '.release/local',
 *   command: ({ version, port }) => ({ command: `bin/${version}/codegraph-api`, args: ['--port', String(port)] }),
 *   readyTimeoutMs: 30_000,
 * }
 * ```
 */
export interface LocalTargetOptions {
  /** Directory holding pool records, routes, the proxy's address and replica logs. Created if missing. */
  stateDir: string;
  /** Builds the command that starts one replica of `version` on `port`. */
  command: (input: ReplicaCommandInput) => ReplicaCommand;
  /** Path that answers 200 once a replica is ready. @default '/health' */
  healthPath?: string;
  /** How long a replica may take to answer its health check. @default 15000 */
  readyTimeoutMs?: number;
  /** How long a replica may take to exit after SIGTERM before it gets SIGKILL. @default 5000 */
  stopTimeoutMs?: number;
  /** Loopback address replicas and the proxy listen on. @default '127.0.0.1' */
  host?: string;
  /** The proxy's front port; 0 picks a free port once and keeps it in `stateDir`. @default 0 */
  proxyPort?: number;
  /** Name shown in logs and errors. @default 'local' */
  name?: string;
}

/**
 * Every option's default, in one place.
 *
 * @example
 * ```ts
 * localTarget({ stateDir, command, readyTimeoutMs: localTargetDefaults.readyTimeoutMs * 2 })
 * ```
 */
export const localTargetDefaults = {
  healthPath: '/health',
  readyTimeoutMs: 15_000,
  stopTimeoutMs: 5_000,
  host: '127.0.0.1',
  proxyPort: 0,
  name: 'local',
} as const;

export type ResolvedOptions = Required<LocalTargetOptions>;

const known = new Set(['stateDir', 'command', ...Object.keys(localTargetDefaults)]);

function fail(message: string): never {
  throw new ConfigInvalidError(`localTarget: ${message}`);
}

const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

/** Checks options and fills in defaults; throws {@link ConfigInvalidError} before anything happens. */
export function resolveOptions(options: LocalTargetOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) fail('options must be an object');
  for (const key of Object.keys(options)) if (!known.has(key)) fail(`unknown option "${key}"`);
  const o = { ...localTargetDefaults, ...options };
  if (typeof o.stateDir !== 'string' || o.stateDir.trim() === '') fail('stateDir must be a directory path');
  if (typeof o.command !== 'function')
    fail('command must be a function ({ version, pool, port, index }) => ({ command, args })');
  if (typeof o.healthPath !== 'string' || !o.healthPath.startsWith('/'))
    fail('healthPath must start with "/"');
  if (!isInt(o.readyTimeoutMs, 1, 3_600_000)) fail('readyTimeoutMs must be an integer between 1 and 3600000');
  if (!isInt(o.stopTimeoutMs, 0, 3_600_000)) fail('stopTimeoutMs must be an integer between 0 and 3600000');
  if (!isInt(o.proxyPort, 0, 65_535)) fail('proxyPort must be an integer between 0 and 65535');
  if (typeof o.host !== 'string' || !/^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost)$/.test(o.host)) {
    fail(
      'host must be an IPv4 loopback address (127.x.x.x or localhost): replicas are not meant to be reachable from outside',
    );
  }
  checkText(o.name, 'localTarget: name', { max: 128 });
  return { ...o, stateDir: path.resolve(o.stateDir) };
}

/** Checks what `command()` returned, so a bad spec fails before a process is spawned. */
export function checkCommand(
  spec: unknown,
  pool: string,
): Required<Omit<ReplicaCommand, 'cwd' | 'env'>> & { env: Record<string, string>; cwd?: string } {
  const where = `command() for pool ${pool}`;
  if (typeof spec !== 'object' || spec === null) fail(`${where} must return { command, args?, env?, cwd? }`);
  const s = spec as Record<string, unknown>;
  if (typeof s.command !== 'string' || s.command === '') fail(`${where}: command must be a non-empty string`);
  const args = s.args ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string'))
    fail(`${where}: args must be strings`);
  const given = s.env ?? {};
  if (
    typeof given !== 'object' ||
    given === null ||
    !Object.values(given).every((v) => typeof v === 'string' || v === undefined)
  ) {
    fail(`${where}: env values must be strings`);
  }
  const env = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  if (s.cwd !== undefined && typeof s.cwd !== 'string') fail(`${where}: cwd must be a string`);
  return {
    command: s.command,
    args: args as string[],
    env: env as Record<string, string>,
    ...(typeof s.cwd === 'string' ? { cwd: s.cwd } : {}),
  };
}

const ctx = { plugin: 'local' };

/**
 * Checks a provision request with core's rules (a pool name, a version that cannot name a path or a
 * command, 0 to `rules.replicasMax` replicas); throws {@link ConfigInvalidError} before anything happens.
 */
export function checkProvision(request: { pool: unknown; version: unknown; replicas: unknown }): void {
  if (typeof request !== 'object' || request === null) fail('provision needs { pool, version, replicas }');
  checkPool(request.pool);
  checkVersion(request.version, 'localTarget: version', ctx);
  checkReplicas(request.replicas, 'localTarget: replicas', { ...ctx, min: 0 });
}

/** Checks a pool name with core's rules. */
export function checkPool(pool: unknown): asserts pool is string {
  checkPoolName(pool, 'localTarget: pool name', ctx);
}
