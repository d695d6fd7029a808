import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createReleaseEngine,
  fileStore,
  httpValidation,
  type LocalTarget,
  localTarget,
  type ReleaseEngineOptions,
  type ReleaseEvent,
  type Target,
  type Verifier,
} from '@codegraph/release-core';
import { type BlueGreenOptions, blueGreen } from '@codegraph/strategy-bluegreen';
import { nginxTarget } from '@codegraph/target-nginx';
import { Agent, request } from 'undici';

/** The sample CodeGraph-like service every test releases. */
export const sampleServer = fileURLToPath(
  new URL('../../../../examples/sample-service/server.mjs', import.meta.url),
);

/** Faults per version, given to the sample service as environment variables. */
export type Faults = Record<string, Record<string, string>>;

/** Polls `check` every 10 ms until it holds; fails after `timeoutMs` naming `what`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * The deployment validation suite, trimmed to what a test can afford: every check runs, on fewer
 * requests. A version with missing security headers or an error rate fails it.
 */
export const validationSuite = (): Verifier =>
  httpValidation({
    timeoutSecs: 5,
    loadRequests: 40,
    concurrentRequests: 4,
    latencySamples: 5,
    loadPath: '/api/v1/search?q=graph',
  });

/**
 * Production-traffic analysis: the p95 latency the target's proxy measured for the pool under test
 * must stay under `maxP95Ms`; fewer than `minRequests` samples is inconclusive (no data is not success).
 */
export function proxyLatency(maxP95Ms: number, minRequests = 10): Verifier {
  return {
    name: 'proxy-latency',
    async verify({ target, pools, signal }) {
      const pool = pools[0]?.name;
      if (!pool || !target.traffic) throw new Error('proxy-latency needs a pool and a target with traffic()');
      const t = await target.traffic(pool, { signal });
      const samples = [...t.latencyMs].sort((a, b) => a - b);
      if (samples.length < minRequests) {
        return {
          verdict: 'inconclusive',
          checks: [
            {
              name: 'proxy.p95_ms',
              verdict: 'inconclusive',
              observed: null,
              threshold: `< ${maxP95Ms}`,
              reason: `${samples.length} samples`,
            },
          ],
        };
      }
      const p95 = samples[Math.min(samples.length - 1, Math.ceil(samples.length * 0.95) - 1)]!;
      const verdict = p95 < maxP95Ms ? 'pass' : 'fail';
      return {
        verdict,
        checks: [
          {
            name: 'proxy.p95_ms',
            verdict,
            observed: p95,
            threshold: `< ${maxP95Ms}`,
            reason: `p95 of ${samples.length} requests through ${pool}`,
          },
        ],
      };
    },
  };
}

/** One answered (or failed) request of the load generator. */
export interface Answer {
  start: number;
  end: number;
  version: string | null;
  pool: string | null;
  ok: boolean;
  error?: string;
}

/** GETs `/api/v1/search` from `concurrency` loops until stopped; records every answer with its times. */
export function loadGenerator(url: string, concurrency = 4) {
  const answers: Answer[] = [];
  const agent = new Agent({ connections: concurrency, keepAliveTimeout: 1_000 });
  let running = true;
  const loops = Array.from({ length: concurrency }, async (_, i) => {
    let n = 0;
    while (running) {
      const start = performance.now();
      try {
        const res = await request(`${url}/api/v1/search?q=graph-${i}-${n++}`, { dispatcher: agent });
        await res.body.dump();
        const header = (h: string) => {
          const v = res.headers[h];
          return typeof v === 'string' ? v : null;
        };
        answers.push({
          start,
          end: performance.now(),
          version: header('x-codegraph-version'),
          pool: header('x-codegraph-pool'),
          ok: res.statusCode === 200,
          ...(res.statusCode === 200 ? {} : { error: `HTTP ${res.statusCode}` }),
        });
      } catch (err) {
        answers.push({
          start,
          end: performance.now(),
          version: null,
          pool: null,
          ok: false,
          error: String(err),
        });
      }
    }
  });
  const count = (pred: (a: Answer) => boolean) => answers.filter(pred).length;
  return {
    answers,
    failed: () => answers.filter((a) => !a.ok),
    byVersion: () => {
      const out: Record<string, number> = {};
      for (const a of answers) if (a.version) out[a.version] = (out[a.version] ?? 0) + 1;
      return out;
    },
    /** Waits until `n` more requests were answered by `version`. */
    async answeredBy(version: string, n: number, timeoutMs = 15_000) {
      const goal = count((a) => a.version === version) + n;
      await until(
        () => count((a) => a.version === version) >= goal,
        timeoutMs,
        `${n} answers from ${version}`,
      );
    },
    async stop() {
      if (running) {
        running = false;
        await Promise.all(loops);
        await agent.close();
      }
      return answers;
    },
  };
}

/** A process is alive when signal 0 reaches it and it is not a zombie waiting to be reaped. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** Every PID a local target recorded (replicas and proxy), to prove none outlives a test. */
export function recordedPids(stateDir: string): number[] {
  const json = (f: string) => {
    try {
      return JSON.parse(readFileSync(join(stateDir, f), 'utf8'));
    } catch {
      return null;
    }
  };
  const pools = (json('pools.json')?.pools ?? {}) as Record<string, { members: { pid: number }[] }>;
  const proxy = json('proxy.json') as { pid: number } | null;
  return [...Object.values(pools).flatMap((p) => p.members.map((m) => m.pid)), ...(proxy ? [proxy.pid] : [])];
}

/** PIDs of a pool's replicas, as the local target recorded them. */
export const poolPids = (stateDir: string, pool: string): number[] => {
  try {
    const pools = JSON.parse(readFileSync(join(stateDir, 'pools.json'), 'utf8')).pools;
    return (pools[pool]?.members ?? []).map((m: { pid: number }) => m.pid).sort();
  } catch {
    return [];
  }
};

/** The local target running the sample service, with per-version faults. */
export function sampleLocalTarget(stateDir: string, faults: Faults = {}): LocalTarget {
  return localTarget({
    stateDir,
    readyTimeoutMs: 10_000,
    stopTimeoutMs: 3_000,
    command: ({ version, port }) => ({
      command: process.execPath,
      args: [sampleServer, '--port', String(port), '--version', version],
      env: faults[version] ?? {},
    }),
  });
}

/**
 * Environment options that put a real nginx (`nginxTarget`, Debian's nginx) in front of the sample
 * replicas: `stateDir/nginx` for nginx, `stateDir/nginx/backend` for the replicas.
 */
export const viaNginx = (faults: Faults = {}): Pick<EnvOptions, 'target' | 'replicasDir'> => ({
  replicasDir: join('nginx', 'backend'),
  target: (dir) =>
    nginxTarget({
      stateDir: join(dir, 'nginx'),
      readyTimeoutMs: 10_000,
      stopTimeoutMs: 3_000,
      drainTimeoutMs: 5_000,
      command: ({ version, port }) => ({
        command: process.execPath,
        args: [sampleServer, '--port', String(port), '--version', version],
        env: faults[version] ?? {},
      }),
    }),
});

/** Options of {@link blueGreenEnv}. */
export interface EnvOptions {
  strategy?: BlueGreenOptions;
  verifiers?: Verifier[];
  /** Makes the target; the local target running the sample service by default. */
  target?: (dir: string) => Target & { endpoint(): Promise<string>; destroy(): Promise<void> };
  /** Where, under the environment's directory, the replicas' local target keeps its records. @default 'local' */
  replicasDir?: string;
  faults?: Faults;
}

/** PIDs of live processes whose command line mentions `needle` (an nginx started with `-p <dir>`). */
async function pidsMentioning(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmd = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmd.replace(/\0/g, ' ').includes(needle) && alive(Number(entry))) pids.push(Number(entry));
  }
  return pids;
}

/** A release environment in a temp directory: a target, a file store, a blue-green engine, events. */
export async function blueGreenEnv(options: EnvOptions = {}) {
  const dir = await fs.mkdtemp(join(tmpdir(), 'cg-bluegreen-'));
  const stateDir = join(dir, options.replicasDir ?? 'local');
  const target = options.target ? options.target(dir) : sampleLocalTarget(stateDir, options.faults);
  const events: Array<ReleaseEvent & { at: number }> = [];
  const make = (extra: Partial<ReleaseEngineOptions> = {}) => {
    const engine = createReleaseEngine({
      environment: 'production',
      target,
      strategy: blueGreen(options.strategy),
      store: fileStore({ dir: join(dir, 'store') }),
      verifiers: options.verifiers ?? [validationSuite()],
      replicas: 2,
      metrics: false,
      ...extra,
    });
    engine.on('*', (e) => events.push({ ...e, at: performance.now() }));
    return engine;
  };
  return {
    dir,
    stateDir,
    target,
    engine: make(),
    make,
    events,
    /** Actions the engine started in a phase, in order, as `type pool`. */
    actions(phase: string, runId?: string): string[] {
      return events.flatMap((e) =>
        e.type === 'action.started' && e.phase === phase && (!runId || e.runId === runId)
          ? [`${e.action.type}${'pool' in e.action ? ` ${e.action.pool}` : ''}`]
          : [],
      );
    },
    /** The version `/health` reports through the target's front endpoint. */
    async serving(): Promise<string> {
      const res = await request(`${await target.endpoint()}/health`);
      return ((await res.body.json()) as { version: string }).version;
    },
    /** Destroys the target and deletes the directory; returns (and kills) the PIDs that survived. */
    async cleanup(): Promise<number[]> {
      const pids = recordedPids(stateDir);
      await target.destroy().catch(() => undefined);
      // Whatever survived destroy() (it should be nothing) must not outlive the test.
      const survivors = [...new Set([...pids, ...(await pidsMentioning(dir))])].filter(alive);
      for (const pid of survivors) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone meanwhile.
        }
      }
      await fs.rm(dir, { recursive: true, force: true });
      return survivors;
    },
  };
}
