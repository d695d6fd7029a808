import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import {
  type BackupInfo,
  type BackupProvider,
  createReleaseEngine,
  fileStore,
  type Logger,
  localTarget,
  type ReleaseEngineOptions,
  type ReleaseEvent,
  rolling,
  type Verifier,
} from '../../src/index.js';
import { sampleServerPath } from './sample.js';

/** A logger that keeps every line, to search it for secrets and phases. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (m: string, f?: Record<string, unknown>) => {
    lines.push(`${level} ${m}${f ? ` ${JSON.stringify(f)}` : ''}`);
  };
  return { lines, debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
}

/**
 * Real HTTP checks against the version under test: `/health` reports the version, and search answers
 * 200 on 20 requests in a row (a version with an error rate fails it).
 */
export const serviceChecks: Verifier = {
  name: 'service',
  async verify({ endpoint, version, signal }) {
    const health = await request(`${endpoint}/health`, { signal });
    const body = (await health.body.json()) as { version?: string };
    let failures = 0;
    for (let i = 0; i < 20; i++) {
      const res = await request(`${endpoint}/api/v1/search?q=graph`, { signal });
      await res.body.dump();
      if (res.statusCode >= 500) failures++;
    }
    const versionOk = health.statusCode === 200 && body.version === version;
    return {
      verdict: versionOk && failures === 0 ? 'pass' : 'fail',
      checks: [
        {
          name: 'health.version',
          verdict: versionOk ? 'pass' : 'fail',
          observed: body.version ?? null,
          threshold: version,
          reason: versionOk ? 'version matches' : 'wrong version',
        },
        {
          name: 'search.5xx',
          verdict: failures === 0 ? 'pass' : 'fail',
          observed: failures,
          threshold: 0,
          reason: `${failures} of 20 searches failed`,
        },
      ],
    };
  },
};

/** A backup provider that copies a real directory: enough to prove the engine's backup phases. */
export function directoryBackup(source: string, repo: string): BackupProvider & { created: BackupInfo[] } {
  const created: BackupInfo[] = [];
  return {
    name: 'dir-copy',
    created,
    async create(req) {
      const id = `b${created.length + 1}`;
      await fs.cp(source, join(repo, id), { recursive: true });
      const info: BackupInfo = {
        id,
        createdAt: new Date().toISOString(),
        reason: req.reason,
        ...(req.version ? { version: req.version } : {}),
        labels: req.labels ?? {},
        sizeBytes: 0,
        files: 1,
      };
      created.push(info);
      return info;
    },
    async list() {
      return created;
    },
    async verify(id) {
      return { id, ok: created.some((c) => c.id === id), level: 'presence', problems: [] };
    },
    async restore({ id }) {
      return { id: id ?? '' };
    },
  };
}

/** Faults per version, passed to the sample service as environment variables. */
export type Faults = Record<string, Record<string, string>>;

/** A release environment on loopback: the sample service behind localTarget, a file store, an engine. */
export async function releaseEnv(
  options: { faults?: Faults; engine?: Partial<ReleaseEngineOptions>; replicas?: number } = {},
) {
  const dir = await fs.mkdtemp(join(tmpdir(), 'cg-release-'));
  const target = localTarget({
    stateDir: join(dir, 'local'),
    readyTimeoutMs: 10_000,
    stopTimeoutMs: 3_000,
    command: ({ version, port }) => ({
      command: process.execPath,
      args: [sampleServerPath, '--port', String(port), '--version', version],
      env: options.faults?.[version] ?? {},
    }),
  });
  const logger = memoryLogger();
  const events: ReleaseEvent[] = [];
  const make = (extra: Partial<ReleaseEngineOptions> = {}) => {
    const engine = createReleaseEngine({
      environment: 'staging',
      target,
      strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
      store: fileStore({ dir: join(dir, 'store') }),
      verifiers: [serviceChecks],
      replicas: options.replicas ?? 2,
      metrics: false,
      logger,
      ...options.engine,
      ...extra,
    });
    engine.on('*', (e) => events.push(e));
    return engine;
  };
  const engine = make();
  return {
    dir,
    target,
    engine,
    make,
    logger,
    events,
    /** The version answering through the proxy. */
    async serving(): Promise<string> {
      const res = await request(`${await target.endpoint()}/health`);
      return ((await res.body.json()) as { version: string }).version;
    },
    async cleanup() {
      await target.destroy();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
