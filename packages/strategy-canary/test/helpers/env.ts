import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createReleaseEngine,
  fileStore,
  type GateOptions,
  httpValidation,
  localTarget,
  type ReleaseEvent,
  type Strategy,
  type Target,
  type Verifier,
} from '@codegraph/release-core';
import { Agent, request } from 'undici';

/** Absolute path of the sample CodeGraph-like service. */
export const sampleServer = fileURLToPath(
  new URL('../../../../examples/sample-service/server.mjs', import.meta.url),
);

/** Environment variables per version: the sample service's faults (`FAULT_LATENCY_MS`, `FAULT_ERROR_RATE`). */
export type Faults = Record<string, Record<string, string>>;

/** Every version answers in about 5 ms, so a 5x slower one is 25 ms. */
export const baseLatency = { FAULT_LATENCY_MS: '5' };

/** What a release environment needs beside its target. */
export interface EnvOptions {
  strategy: Strategy;
  verifiers: Verifier[];
  /** The verify phase's gate; the judge is dry-run there (after promotion there is nothing to compare with). */
  verifyGate?: GateOptions;
}

/** A light validation of what serves after a release: health (with the version), GraphQL and metrics. */
export const serviceValidation = () =>
  httpValidation({
    name: 'validation',
    checks: { latency: false, concurrency: false, securityHeaders: false },
  });

/** The engine on top of any target, with a file store in `dir` and every event kept. */
export function engineOn(target: Target, dir: string, o: EnvOptions) {
  const events: ReleaseEvent[] = [];
  const engine = createReleaseEngine({
    environment: 'staging',
    target,
    strategy: o.strategy,
    store: fileStore({ dir: path.join(dir, 'store') }),
    verifiers: [...o.verifiers, serviceValidation()],
    verifyGate: o.verifyGate ?? { dryRun: o.verifiers.map((v) => v.name) },
    replicas: 2,
    metrics: false,
  });
  engine.on('*', (e) => events.push(e));
  return { engine, events };
}

/** A local target running the sample service with faults per version, in a temp directory. */
export async function localEnv(faults: Faults) {
  const dir = await mkdtemp(path.join(tmpdir(), 'cg-canary-'));
  const target = localTarget({
    stateDir: path.join(dir, 'local'),
    readyTimeoutMs: 10_000,
    stopTimeoutMs: 3_000,
    command: ({ version, port }) => ({
      command: process.execPath,
      args: [sampleServer, '--port', String(port), '--version', version],
      env: { ...baseLatency, ...faults[version] },
    }),
  });
  return {
    dir,
    target,
    async cleanup() {
      await target.destroy().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One answered (or failed) request of the load. */
export interface Sample {
  /** `performance.timeOrigin`-based milliseconds when the request was sent and when it ended. */
  start: number;
  end: number;
  status: number;
  /** The pool that answered (`x-codegraph-pool` from the local proxy, `x-codegraph-version` otherwise). */
  pool: string;
}

/**
 * Steady load: `concurrency` loops of GET `path` through the front endpoint until stopped, each
 * recording its result. A refused or broken connection counts as status 0.
 */
export function steadyLoad(base: string, concurrency = 3, requestPath = '/api/v1/search?q=graph') {
  const dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: concurrency });
  const samples: Sample[] = [];
  let running = true;
  const now = () => performance.timeOrigin + performance.now();
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      const start = now();
      try {
        const res = await request(`${base}${requestPath}`, { dispatcher, headersTimeout: 10_000 });
        await res.body.dump();
        const pool = String(res.headers['x-codegraph-pool'] ?? res.headers['x-codegraph-version'] ?? 'none');
        samples.push({ start, end: now(), status: res.statusCode, pool });
      } catch {
        samples.push({ start, end: now(), status: 0, pool: 'none' });
      }
    }
  });
  let stopped: Promise<void> | undefined;
  return {
    samples,
    failed: () => samples.filter((s) => s.status === 0 || s.status >= 500),
    async stop() {
      running = false;
      stopped ??= Promise.all(loops).then(() => dispatcher.close());
      await stopped;
      return samples;
    },
  };
}

/** What answers `/health` through `base` (the version string). */
export async function servingVersion(base: string): Promise<string> {
  const res = await request(`${base}/health`);
  return ((await res.body.json()) as { version: string }).version;
}

/** The weights of every `traffic.shifted` event, in order. */
export const shifts = (events: ReleaseEvent[]) =>
  events.flatMap((e) =>
    e.type === 'traffic.shifted' ? [{ weights: e.weights, at: Date.parse(e.time) }] : [],
  );
