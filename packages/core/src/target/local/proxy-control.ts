import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { TargetOperationError, TargetUnavailableError } from '../../errors.js';
import type { PoolTraffic } from '../types.js';
import { delay, isAlive, spawnDetached, tail } from './processes.js';
import type { ProxyRecord, RoutesRecord, StateDir } from './state.js';

/**
 * Where `proxy.mjs` sits: next to this module in the sources (vitest), next to the bundle in `dist/`
 * (tsup copies it there), for both the ESM and the CommonJS build.
 */
export function proxyScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'proxy.mjs'), path.join(here, '..', 'proxy.mjs')];
  const found = candidates.find((file) => existsSync(file));
  if (!found) {
    throw new TargetOperationError(
      `local target: proxy.mjs not found next to ${here}; the package is incomplete`,
    );
  }
  return found;
}

/** Talks to the proxy's control API over loopback. */
export class ProxyControl {
  private agent: Agent | undefined;

  constructor(
    private readonly state: StateDir,
    private readonly name: string,
  ) {}

  private dispatcher(): Agent {
    this.agent ??= new Agent({ connections: 8, headersTimeout: 10_000, bodyTimeout: 10_000 });
    return this.agent;
  }

  /** Releases sockets; a later call opens new ones. */
  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    await agent?.close();
  }

  /** Whether the health endpoint of `url` answers 200 within `timeoutMs`. */
  async healthy(url: string, signal?: AbortSignal, timeoutMs = 1_000): Promise<boolean> {
    try {
      const res = await request(url, {
        dispatcher: this.dispatcher(),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(signal ? { signal } : {}),
      });
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }

  /** The running proxy, or undefined when none answers. Never starts one. */
  async running(signal?: AbortSignal): Promise<ProxyRecord | undefined> {
    const record = await this.state.proxy();
    if (!record || !isAlive(record)) return undefined;
    const ok = await this.healthy(`http://${record.host}:${record.controlPort}/health`, signal, 3_000);
    return ok ? record : undefined;
  }

  /**
   * Returns the running proxy, starting one when none runs. A new proxy keeps the front port the old
   * one had and reloads `routes.json`, so clients and weights carry over.
   */
  async ensure(
    opts: { host: string; proxyPort: number; timeoutMs: number },
    signal?: AbortSignal,
  ): Promise<ProxyRecord> {
    const current = await this.running(signal);
    if (current) return current;
    // Two engines (or two instances in one) on the same stateDir must not start two proxies.
    return this.state.withLock('proxy', opts.timeoutMs, signal, async () => {
      return (await this.running(signal)) ?? (await this.start(opts, signal));
    });
  }

  private async start(
    opts: { host: string; proxyPort: number; timeoutMs: number },
    signal?: AbortSignal,
  ): Promise<ProxyRecord> {
    const previous = await this.state.proxy();
    if (previous && isAlive(previous)) {
      // Alive but silent: a second proxy could not take its port, and killing a busy one drops requests.
      throw new TargetUnavailableError(
        `${this.name}: the proxy (pid ${previous.pid}) runs but its control port ${previous.controlPort} does not answer; retry, or stop it`,
        { plugin: this.name, details: { pid: previous.pid } },
      );
    }
    const port = opts.proxyPort || previous?.port || 0;
    const log = this.state.logFile('proxy');
    const child = await spawnDetached({
      command: process.execPath,
      args: [proxyScript(), '--state-dir', this.state.dir, '--host', opts.host, '--port', String(port)],
      env: { ...process.env, CG_PROXY_TOKEN: randomBytes(24).toString('hex') } as Record<string, string>,
      logFile: log,
    });
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      const record = await this.state.proxy().catch(() => undefined);
      if (record?.pid === child.pid) {
        const ok = await this.healthy(`http://${record.host}:${record.controlPort}/health`, signal);
        if (ok) return { ...record, startTicks: child.startTicks };
      }
      if (child.exitedNow() || Date.now() > deadline) {
        const why = child.exitedNow() ? 'exited' : `was not ready within ${opts.timeoutMs} ms`;
        if (!child.exitedNow()) process.kill(child.pid, 'SIGKILL');
        throw new TargetOperationError(
          `${this.name}: the proxy ${why} (front port ${port}); its log ${log} ends with:\n${await tail(log, 1_000)}`,
          { plugin: this.name, details: { port, log } },
        );
      }
      await delay(20, signal, 'starting the local proxy');
    }
  }

  private async call<T>(
    record: ProxyRecord,
    method: 'GET' | 'PUT' | 'POST',
    pathname: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<T> {
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`http://${record.host}:${record.controlPort}${pathname}`, {
        method,
        dispatcher: this.dispatcher(),
        headers: { authorization: `Bearer ${record.token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      throw new TargetUnavailableError(
        `${this.name}: the proxy's control API did not answer ${method} ${pathname}`,
        {
          cause: err,
          plugin: this.name,
        },
      );
    }
    const text = await res.body.text();
    if (res.statusCode !== 200) {
      throw new TargetOperationError(
        `${this.name}: the proxy refused ${method} ${pathname}: ${res.statusCode} ${text}`,
        {
          plugin: this.name,
        },
      );
    }
    return JSON.parse(text) as T;
  }

  putRoutes(record: ProxyRecord, routes: RoutesRecord, signal?: AbortSignal): Promise<RoutesRecord> {
    return this.call(record, 'PUT', '/routes', routes, signal);
  }

  traffic(record: ProxyRecord, pool: string, signal?: AbortSignal): Promise<PoolTraffic> {
    return this.call(record, 'GET', `/traffic?pool=${encodeURIComponent(pool)}`, undefined, signal);
  }

  resetTraffic(record: ProxyRecord, pool: string | undefined, signal?: AbortSignal): Promise<unknown> {
    const query = pool === undefined ? '' : `?pool=${encodeURIComponent(pool)}`;
    return this.call(record, 'POST', `/traffic/reset${query}`, undefined, signal);
  }

  /** Waits until no request is in flight to any of `endpoints`, or `timeoutMs` passes. */
  async drain(
    record: ProxyRecord,
    endpoints: string[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    if (endpoints.length === 0) return;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { endpoints: busy } = await this.call<{ endpoints: Record<string, number> }>(
        record,
        'GET',
        '/inflight',
        undefined,
        signal,
      );
      if (!endpoints.some((e) => (busy[e] ?? 0) > 0) || Date.now() > deadline) return;
      await delay(20, signal, 'draining in-flight requests');
    }
  }
}
