import path from 'node:path';
import { ConfigInvalidError, type LocalTargetOptions, type Target } from '@codegraph/release-core';
import {
  checkPoolName,
  checkReplicas,
  checkVersion,
  checkWeights as weightsRule,
} from '@codegraph/release-core/kit';
import { checkConfigPath, checkDirective, checkTargetName, checkUser, ipv4 } from './grammar.js';

/**
 * How nginx itself runs: its binary, where it listens, and a few knobs of the rendered config.
 *
 * @example
 * ```ts
 * nginxTarget({ stateDir, command, nginx: { listenPort: 8080, serverDirectives: ['client_max_body_size 10m;'] } })
 * ```
 */
export interface NginxProcessOptions {
  /** The nginx executable. @default '/usr/sbin/nginx' */
  binary?: string;
  /** The port clients connect to; 0 picks a free port once and keeps it in `stateDir`. @default 0 */
  listenPort?: number;
  /** The IPv4 address nginx listens on. @default '127.0.0.1' */
  host?: string;
  /**
   * Worker processes. With 1, smooth weighted round-robin is exact (90/10 gives 90 and 10 answers out of
   * every 100); with more, each worker keeps its own rotation and shares are exact only on average.
   * @default 1
   */
  workerProcesses?: number | 'auto';
  /** The `user` directive; only meaningful when the engine runs as root. @default undefined (nginx's own default) */
  user?: string | undefined;
  /** Idle keep-alive connections each worker keeps to the upstream replicas. @default 32 */
  keepalive?: number;
  /**
   * Seconds nginx keeps an idle client connection open for another request (`keepalive_timeout`). With 0,
   * nginx answers `Connection: close`, so a reload never closes a connection that a client is about to
   * reuse: no client sees a failed request while weights change. Above 0, connections are reused (more
   * throughput), but every reload closes idle ones and clients must retry an idempotent request whose
   * reused connection closed before any response (browsers and many HTTP clients do; plain `fetch` does not).
   * @default 0
   */
  clientKeepaliveS?: number;
  /**
   * Raw directives added to the `server` block, e.g. `['client_max_body_size 10m;']`. A typo here is
   * caught by `nginx -t` and the previous configuration keeps serving.
   * @default []
   */
  serverDirectives?: string[];
}

/**
 * Options of {@link nginxTarget}.
 *
 * @example
 * ```ts
 * const options: NginxTargetOptions = {
 *   stateDir: '.release/nginx',
 *   command: ({ version, port }) => ({ command: `/opt/codegraph/${version}/bin/api`, args: ['--port', String(port)] }),
 *   prometheusFileSd: '/etc/prometheus/targets/codegraph.json',
 * }
 * ```
 */
export interface NginxTargetOptions {
  /** Directory for nginx's config, pid file, logs and temp files (`nginx/`) and the backend's state (`backend/`). */
  stateDir: string;
  /**
   * Builds the command of one replica, exactly like `localTarget`'s `command`. Used to build the default
   * backend; give either `command` or `backend`. @default undefined
   */
  command?: LocalTargetOptions['command'];
  /**
   * The target that runs the pools' processes; nginx only routes. It must list a pool's endpoints in the
   * order it keeps them when scaling down (the first `replicas` stay), as `localTarget` does.
   * @default localTarget({ stateDir: `${stateDir}/backend`, command, readyTimeoutMs, stopTimeoutMs })
   */
  backend?: Target;
  /** How nginx runs. */
  nginx?: NginxProcessOptions;
  /**
   * A path where a Prometheus `file_sd` JSON lists every ready replica with `pool` and `version` labels,
   * rewritten atomically on every change. @default undefined (no file)
   */
  prometheusFileSd?: string | undefined;
  /** How long a replica of the default backend may take to become ready. @default 15000 */
  readyTimeoutMs?: number;
  /** How long a replica of the default backend may take to stop after SIGTERM. @default 5000 */
  stopTimeoutMs?: number;
  /** How long nginx may take to start, or to serve a reloaded configuration. @default 10000 */
  reloadTimeoutMs?: number;
  /**
   * How long old nginx workers may finish in-flight requests after a reload (`worker_shutdown_timeout`);
   * replicas leaving the upstream are stopped only after that. @default 30000
   */
  drainTimeoutMs?: number;
  /** Name shown in logs and errors. @default 'nginx' */
  name?: string;
}

/**
 * Every option's default, in one place.
 *
 * @example
 * ```ts
 * const timeout = options.reloadTimeoutMs ?? nginxTargetDefaults.reloadTimeoutMs // 10000
 * ```
 */
export const nginxTargetDefaults = {
  binary: '/usr/sbin/nginx',
  listenPort: 0,
  host: '127.0.0.1',
  workerProcesses: 1,
  keepalive: 32,
  clientKeepaliveS: 0,
  readyTimeoutMs: 15_000,
  stopTimeoutMs: 5_000,
  reloadTimeoutMs: 10_000,
  drainTimeoutMs: 30_000,
  name: 'nginx',
} as const;

/** Options after checking, with every default filled in. */
export interface ResolvedOptions {
  stateDir: string;
  nginxDir: string;
  backend: Target | undefined;
  command: LocalTargetOptions['command'] | undefined;
  binary: string;
  listenPort: number;
  host: string;
  workerProcesses: number | 'auto';
  user: string | undefined;
  keepalive: number;
  clientKeepaliveS: number;
  serverDirectives: string[];
  prometheusFileSd: string | undefined;
  readyTimeoutMs: number;
  stopTimeoutMs: number;
  reloadTimeoutMs: number;
  drainTimeoutMs: number;
  name: string;
}

const topKeys = new Set([
  'stateDir',
  'command',
  'backend',
  'nginx',
  'prometheusFileSd',
  'readyTimeoutMs',
  'stopTimeoutMs',
  'reloadTimeoutMs',
  'drainTimeoutMs',
  'name',
]);
const nginxKeys = new Set([
  'binary',
  'listenPort',
  'host',
  'workerProcesses',
  'user',
  'keepalive',
  'clientKeepaliveS',
  'serverDirectives',
]);

function fail(message: string): never {
  throw new ConfigInvalidError(`nginxTarget: ${message}`, { plugin: 'nginx' });
}

const isInt = (v: unknown, min: number, max: number): boolean =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks options and fills in defaults; throws `ConfigInvalidError` before anything happens. */
export function resolveOptions(options: NginxTargetOptions): ResolvedOptions {
  if (!isObject(options)) fail('options must be an object');
  for (const key of Object.keys(options)) if (!topKeys.has(key)) fail(`unknown option "${key}"`);
  const n: NginxProcessOptions = options.nginx ?? {};
  if (!isObject(n as unknown)) fail('nginx must be an object like { binary, listenPort, host }');
  for (const key of Object.keys(n)) if (!nginxKeys.has(key)) fail(`unknown option "nginx.${key}"`);
  const d = nginxTargetDefaults;
  const o = {
    readyTimeoutMs: options.readyTimeoutMs ?? d.readyTimeoutMs,
    stopTimeoutMs: options.stopTimeoutMs ?? d.stopTimeoutMs,
    reloadTimeoutMs: options.reloadTimeoutMs ?? d.reloadTimeoutMs,
    drainTimeoutMs: options.drainTimeoutMs ?? d.drainTimeoutMs,
    name: options.name ?? d.name,
    binary: n.binary ?? d.binary,
    listenPort: n.listenPort ?? d.listenPort,
    host: n.host ?? d.host,
    workerProcesses: n.workerProcesses ?? d.workerProcesses,
    keepalive: n.keepalive ?? d.keepalive,
    clientKeepaliveS: n.clientKeepaliveS ?? d.clientKeepaliveS,
    serverDirectives: n.serverDirectives ?? ([] as string[]),
  };
  if (typeof options.stateDir !== 'string' || options.stateDir.trim() === '')
    fail('stateDir must be a directory path');
  const { backend, command } = options;
  if ((backend === undefined) === (command === undefined)) {
    fail('give either command (to run pools as local processes) or backend (a Target), not both or neither');
  }
  if (command !== undefined && typeof command !== 'function')
    fail('command must be a function ({ version, pool, port, index }) => ({ command, args })');
  if (backend !== undefined) {
    const b = backend as unknown as Record<string, unknown>;
    if (!isObject(b) || !['describe', 'provision', 'retire'].every((m) => typeof b[m] === 'function')) {
      fail('backend must be a Target with describe, provision and retire');
    }
  }
  if (typeof o.binary !== 'string' || !path.isAbsolute(o.binary))
    fail('nginx.binary must be an absolute path');
  if (!isInt(o.listenPort, 0, 65_535)) fail('nginx.listenPort must be an integer between 0 and 65535');
  if (typeof o.host !== 'string' || !ipv4.test(o.host) || o.host === '0.0.0.0') {
    fail('nginx.host must be an IPv4 address such as 127.0.0.1');
  }
  if (o.workerProcesses !== 'auto' && !isInt(o.workerProcesses, 1, 256))
    fail('nginx.workerProcesses must be "auto" or an integer between 1 and 256');
  if (n.user !== undefined) checkUser(n.user);
  if (!isInt(o.keepalive, 1, 10_000)) fail('nginx.keepalive must be an integer between 1 and 10000');
  if (!isInt(o.clientKeepaliveS, 0, 3_600))
    fail('nginx.clientKeepaliveS must be an integer between 0 and 3600');
  if (!Array.isArray(o.serverDirectives)) fail('nginx.serverDirectives must be an array of strings');
  for (const directive of o.serverDirectives) checkDirective(directive);
  const fileSd = options.prometheusFileSd;
  if (fileSd !== undefined && (typeof fileSd !== 'string' || fileSd.trim() === ''))
    fail('prometheusFileSd must be a file path');
  if (!isInt(o.readyTimeoutMs, 1, 3_600_000)) fail('readyTimeoutMs must be an integer between 1 and 3600000');
  if (!isInt(o.stopTimeoutMs, 0, 3_600_000)) fail('stopTimeoutMs must be an integer between 0 and 3600000');
  if (!isInt(o.reloadTimeoutMs, 100, 600_000))
    fail('reloadTimeoutMs must be an integer between 100 and 600000');
  if (!isInt(o.drainTimeoutMs, 0, 3_600_000)) fail('drainTimeoutMs must be an integer between 0 and 3600000');
  checkTargetName(o.name);
  // The directory ends up in nginx's config, quoted: a strict path grammar keeps it one string.
  const stateDir = checkConfigPath(path.resolve(options.stateDir), 'stateDir');
  return {
    ...o,
    stateDir,
    nginxDir: path.join(stateDir, 'nginx'),
    backend,
    command,
    serverDirectives: [...(o.serverDirectives as string[])],
    user: n.user,
    prometheusFileSd: fileSd === undefined ? undefined : path.resolve(fileSd),
  };
}

const ctx = { plugin: 'nginx' };

/** Throws `ConfigInvalidError` unless `pool` is a valid pool name (core's rule). */
export function checkPool(pool: unknown): asserts pool is string {
  checkPoolName(pool, 'nginxTarget: pool name', ctx);
}

/** Checks weights with core's rule: whole percentages over valid pool names adding up to 100, or `{}` (maintenance). */
export function checkWeights(weights: unknown): asserts weights is Record<string, number> {
  weightsRule(weights, 'nginxTarget: weights', ctx);
}

/** Checks a provision request with core's rules; throws `ConfigInvalidError`. */
export function checkProvision(request: unknown): asserts request is {
  pool: string;
  version: string;
  replicas: number;
} {
  if (!isObject(request)) fail('provision needs { pool, version, replicas }');
  checkPool(request.pool);
  checkVersion(request.version, 'nginxTarget: version', ctx);
  checkReplicas(request.replicas, 'nginxTarget: replicas', { ...ctx, min: 0 });
}
