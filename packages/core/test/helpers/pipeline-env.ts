import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import {
  createPipeline,
  createReleaseEngine,
  fileStore,
  type LocalTarget,
  localTarget,
  type Pipeline,
  type PipelineEvent,
  type PipelineOptions,
  type ReleaseEngine,
  rolling,
  type StageOptions,
  silentLogger,
} from '../../src/index.js';
import { type Faults, serviceChecks } from './release-env.js';
import { sampleServerPath } from './sample.js';

/** A controllable clock: windows, soak and approval expiry are judged by it. */
export function testClock(iso: string) {
  let now = Date.parse(iso);
  return {
    now: () => new Date(now),
    set: (t: string) => {
      now = Date.parse(t);
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** One stage on loopback: the sample service behind its own localTarget, with its own store. */
export function stageEnv(dir: string, environment: string, faults: Faults = {}) {
  const target: LocalTarget = localTarget({
    stateDir: join(dir, environment, 'local'),
    readyTimeoutMs: 10_000,
    stopTimeoutMs: 3_000,
    command: ({ version, port }) => ({
      command: process.execPath,
      args: [sampleServerPath, '--port', String(port), '--version', version],
      env: faults[version] ?? {},
    }),
  });
  const engine: ReleaseEngine = createReleaseEngine({
    environment,
    target,
    strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
    store: fileStore({ dir: join(dir, environment, 'store') }),
    verifiers: [serviceChecks],
    replicas: 1,
    metrics: false,
    logger: silentLogger,
  });
  return { target, engine };
}

/** staging → production on loopback, a pipeline store, a clock and every pipeline event kept. */
export async function pipelineEnv(
  options: {
    faults?: Faults;
    clock?: string;
    staging?: Partial<StageOptions>;
    production?: Partial<StageOptions>;
    pipeline?: Partial<PipelineOptions>;
  } = {},
) {
  const dir = await fs.mkdtemp(join(tmpdir(), 'cg-pipeline-'));
  const clock = testClock(options.clock ?? '2026-06-01T10:00:00Z');
  const staging = stageEnv(dir, 'staging', options.faults);
  const production = stageEnv(dir, 'production', options.faults);
  const store = fileStore({ dir: join(dir, 'pipeline-store') });
  const events: PipelineEvent[] = [];
  const pipeline: Pipeline = createPipeline({
    name: 'search',
    store,
    clock: clock.now,
    checkEveryMs: 50,
    logger: silentLogger,
    stages: [
      { name: 'staging', engine: staging.engine, target: staging.target, ...options.staging },
      { name: 'production', engine: production.engine, target: production.target, ...options.production },
    ],
    ...options.pipeline,
  });
  pipeline.on('*', (e) => events.push(e));
  return {
    dir,
    clock,
    store,
    staging,
    production,
    pipeline,
    events,
    /** The version answering through a stage's proxy. */
    async serving(stage: { target: LocalTarget }): Promise<string> {
      const res = await request(`${await stage.target.endpoint()}/health`);
      return ((await res.body.json()) as { version: string }).version;
    },
    /** Resolves once the pipeline emitted an event matching `pred`. */
    until(pred: (e: PipelineEvent) => boolean, timeoutMs = 30_000): Promise<PipelineEvent> {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          off();
          reject(
            new Error(
              `no matching pipeline event within ${timeoutMs} ms; saw ${events.map((e) => e.type).join(', ')}`,
            ),
          );
        }, timeoutMs);
        const off = pipeline.on('*', (e) => {
          if (!pred(e)) return;
          clearTimeout(timer);
          off();
          resolve(e);
        });
      });
    },
    async cleanup() {
      await pipeline.close().catch(() => undefined);
      await staging.target.destroy().catch(() => undefined);
      await production.target.destroy().catch(() => undefined);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
