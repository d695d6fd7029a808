// `--metrics-port` and `--pushgateway`: the engine's metrics for one-shot commands. A scrape target lives
// only as long as the command (plus a linger, so the last scrape sees the final values); a Pushgateway
// keeps the final values after the process is gone.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigInvalidError, metricsHandler, type ReleaseEngine } from '@codegraph/release-core';
import { Pushgateway, Registry } from 'prom-client';
import type { Output } from './output.js';

/** The job name every push uses; the grouping key adds `environment`. */
export const pushJobName = 'codegraph-release';
/** How long `/metrics` stays up after the command ends, unless `--metrics-linger` says otherwise. */
export const defaultLingerSeconds = 5;
const pushTimeoutMs = 10_000;

/** The metrics flags, taken out of a command's arguments. */
export interface MetricsFlags {
  port?: number;
  lingerMs: number;
  pushgateway?: URL;
}

const flagNames = ['--metrics-port', '--metrics-linger', '--pushgateway'] as const;

/** Removes the metrics flags (`--flag value` or `--flag=value`) from `argv`; bad values are `CG_CONFIG_INVALID`. */
export function takeMetricsFlags(argv: readonly string[]): { rest: string[]; flags: MetricsFlags } {
  const rest: string[] = [];
  const given: Partial<Record<(typeof flagNames)[number], string>> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const name = flagNames.find((f) => arg === f || arg.startsWith(`${f}=`));
    if (!name) {
      rest.push(arg);
      continue;
    }
    const value = arg === name ? argv[++i] : arg.slice(name.length + 1);
    if (value === undefined || value === '')
      throw new ConfigInvalidError(`${name} needs a value; nothing was changed`);
    given[name] = value;
  }
  const flags: MetricsFlags = { lingerMs: defaultLingerSeconds * 1000 };
  const port = given['--metrics-port'];
  if (port !== undefined) {
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65_535)
      throw new ConfigInvalidError(
        `--metrics-port takes a TCP port 0-65535 (0: any free port), got ${JSON.stringify(port)}; nothing was changed`,
      );
    flags.port = Number(port);
  }
  const linger = given['--metrics-linger'];
  if (linger !== undefined) {
    if (!/^\d{1,4}(\.\d{1,3})?$/.test(linger))
      throw new ConfigInvalidError(
        `--metrics-linger takes seconds (0-9999, e.g. 5 or 0.5), got ${JSON.stringify(linger)}; nothing was changed`,
      );
    flags.lingerMs = Math.round(Number(linger) * 1000);
  }
  const gateway = given['--pushgateway'];
  if (gateway !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(gateway);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
      throw new ConfigInvalidError(
        '--pushgateway takes an http(s) URL, e.g. http://pushgateway:9091; nothing was changed',
      );
    flags.pushgateway = url;
  }
  return { rest, flags };
}

/** The URL as it may be printed: no user name, password, query or fragment. */
export function safeUrl(url: URL): string {
  return `${url.protocol}//${url.username || url.password ? '***@' : ''}${url.host}${url.pathname === '/' ? '' : url.pathname}`;
}

/** The secrets of a URL, for the redactor: the whole URL, its password and user info, its query. */
function urlSecrets(url: URL): string[] {
  const secrets = [url.href];
  if (url.password) secrets.push(url.password, decodeURIComponent(url.password));
  if (url.username && url.password) secrets.push(`${url.username}:${url.password}`);
  if (url.search) secrets.push(url.search.slice(1));
  return secrets.filter((s) => s.length >= 3);
}

/** One command's metrics: the engines it opens register on {@link MetricsSession.registry}. */
export interface MetricsSession {
  /** The registry the CLI's engines use unless their config names one. */
  readonly registry: Registry;
  /** Serves (and pushes) an engine's metrics; its environment names the push's group. */
  attach(engine: ReleaseEngine): void;
  /** After the command: pushes the final values, keeps `/metrics` up for the linger, then stops it. */
  finish(): Promise<void>;
}

/** Starts the `/metrics` server when `--metrics-port` is given; `undefined` when no metrics flag is. */
export async function startMetrics(flags: MetricsFlags, out: Output): Promise<MetricsSession | undefined> {
  if (flags.port === undefined && !flags.pushgateway) return undefined;
  if (flags.pushgateway) out.addSecrets(urlSecrets(flags.pushgateway));
  const registry = new Registry();
  const registries: Registry[] = [registry];
  const environments = new Set<string>();
  let server: Server | undefined;
  if (flags.port !== undefined) {
    // Built per scrape: an engine attached later (with its config's own registry) is served too.
    const s = createServer((req, res) => metricsHandler(...registries)(req, res));
    await new Promise<void>((resolve, reject) => {
      s.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new ConfigInvalidError(
            `--metrics-port ${flags.port}: cannot listen on 127.0.0.1 (${err.code ?? err.message}); nothing was changed`,
          ),
        ),
      );
      s.listen(flags.port, '127.0.0.1', () => resolve());
    });
    server = s;
    out.warn(`metrics at http://127.0.0.1:${(s.address() as AddressInfo).port}/metrics`);
  }
  return {
    registry,
    attach(engine) {
      environments.add(engine.environment);
      // A registry of the config's own (`metrics: { registry }` or `metrics: {}`) is served and pushed too.
      if (engine.registry && !registries.includes(engine.registry)) registries.push(engine.registry);
    },
    async finish() {
      if (flags.pushgateway) await push(flags.pushgateway, registries, environments, out);
      if (server) {
        if (flags.lingerMs > 0) await new Promise((r) => setTimeout(r, flags.lingerMs));
        const s = server;
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
}

/** Pushes the final values once per environment (PUT: the group holds this run's values only). */
async function push(url: URL, registries: Registry[], environments: Set<string>, out: Output): Promise<void> {
  if (environments.size === 0) {
    out.warn(`--pushgateway: this command opened no environment; nothing pushed to ${safeUrl(url)}`);
    return;
  }
  let merged: Registry;
  try {
    merged = registries.length === 1 ? registries[0]! : Registry.merge(registries);
  } catch (err) {
    out.warn(
      `--pushgateway: the config's registry cannot be merged with the CLI's (${String(err)}); pushing the CLI's only`,
    );
    merged = registries[0]!;
  }
  const gateway = new Pushgateway(url.href, { timeout: pushTimeoutMs }, merged);
  for (const environment of environments) {
    try {
      await gateway.push({ jobName: pushJobName, groupings: { environment } });
      out.warn(`metrics pushed to ${safeUrl(url)} (job ${pushJobName}, environment ${environment})`);
    } catch (err) {
      // The release's outcome stands: a lost push is reported, never turned into another exit code.
      const message = err instanceof Error ? err.message : String(err);
      out.warn(`could not push metrics to ${safeUrl(url)}: ${message.split('\n')[0]}`);
    }
  }
}
