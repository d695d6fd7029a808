// npm run bench: 1,000 environments released concurrently from one process against one PostgreSQL server
// (fsync on) through a 10-connection pool, with a target that only records what it is told. Baseline, same
// server, same pool, same run: raw single-row INSERTs. Then the takeover time after SIGKILL of a holder.
// Prints one JSON object per line, the headline last.

import { spawn } from 'node:child_process';
import { hostname, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createReleaseEngine, rolling, silentLogger, type Target } from '@codegraph/release-core';
import pg from 'pg';
import { postgresStore } from '../dist/index.js';
import { startPostgres } from '../test/helpers/postgres.js';

const environments = Number(process.env.BENCH_ENVIRONMENTS ?? 1_000);
const poolSize = 10;
const ttlMs = 2_000;
const print = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);

/** A target that keeps its pools in memory and records every call. */
function recordingTarget(): Target & { calls: number } {
  let pools: Array<{
    name: string;
    version: string;
    replicas: number;
    ready: number;
    weight: number;
    endpoints: string[];
  }> = [];
  const t = {
    name: 'recording',
    calls: 0,
    async describe() {
      return { pools };
    },
    async provision({ pool, version, replicas }: { pool: string; version: string; replicas: number }) {
      t.calls++;
      const state = {
        name: pool,
        version,
        replicas,
        ready: replicas,
        weight: pools.find((p) => p.name === pool)?.weight ?? 0,
        endpoints: [],
      };
      pools = [...pools.filter((p) => p.name !== pool), state];
      return state;
    },
    async route(weights: Record<string, number>) {
      t.calls++;
      pools = pools.map((p) => ({ ...p, weight: weights[p.name] ?? 0 }));
    },
    async retire(pool: string) {
      t.calls++;
      pools = pools.filter((p) => p.name !== pool);
    },
  };
  return t;
}

const server = await startPostgres({ durable: true });
try {
  const url = await server.createDatabase('bench');
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  pool.on('error', () => {}); // idle connections dropped when the server stops at the end
  const store = postgresStore({ pool, schema: 'bench' });
  await store.runs(); // schema made before the clock starts

  // The run under test: 1,000 releases at once.
  let appends = 0;
  const counted = {
    ...store,
    async append(...args: Parameters<typeof store.append>) {
      const e = await store.append(...args);
      appends++;
      return e;
    },
  };
  const targets = Array.from({ length: environments }, () => recordingTarget());
  const engines = targets.map((target, i) =>
    createReleaseEngine({
      environment: `env-${i}`,
      target,
      strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
      store: counted,
      replicas: 2,
      metrics: false,
      logger: silentLogger,
    }),
  );
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  // All 1,000 are in flight at once; they are started ten per turn of the event loop, as a service
  // receiving 1,000 requests would start them, one socket read at a time.
  const runs: Array<ReturnType<(typeof engines)[number]['release']>> = [];
  for (let i = 0; i < engines.length; i++) {
    if (i % 10 === 0) await new Promise((r) => setImmediate(r));
    runs.push(engines[i]!.release({ version: 'v1' }));
  }
  const results = await Promise.all(runs);
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  delay.disable();
  const failed = results.filter((r) => r.status !== 'succeeded').length;
  if (failed > 0) throw new Error(`${failed} releases did not succeed`);
  const appendsPerS = appends / seconds;
  const loopP99 = delay.percentile(99) / 1e6;
  print({
    name: 'release-1000-environments',
    environments,
    pool: poolSize,
    journal_appends: appends,
    target_calls: targets.reduce((n, t) => n + t.calls, 0),
    seconds: Number(seconds.toFixed(2)),
    journal_appends_per_s: Math.round(appendsPerS),
    event_loop_p99_ms: Number(loopP99.toFixed(1)),
    // How busy this process was (100 = one core all the time), and how busy the machine was: on a shared
    // machine a busy process waits for a core, and that wait shows in the event loop's delay.
    process_cpu_pct: Math.round(((cpu.user + cpu.system) / 1e6 / seconds) * 100),
    machine_load_1m: Number(loadavg()[0]!.toFixed(1)),
  });

  // Baseline: the same number of single-row INSERTs, as many callers at once, same pool, same server.
  await pool.query(
    'CREATE TABLE raw_insert (id bigserial PRIMARY KEY, run_id text, at timestamptz, entry json)',
  );
  const payload = JSON.stringify({
    type: 'step-finished',
    key: 'deploy/3',
    result: { weights: { v1: 50, v2: 50 } },
  });
  let next = 0;
  const rawDelay = monitorEventLoopDelay({ resolution: 10 });
  rawDelay.enable();
  const rawStarted = performance.now();
  await Promise.all(
    Array.from({ length: environments }, async (_, i) => {
      while (next < appends) {
        next++;
        await pool.query({
          name: 'raw_insert',
          text: 'INSERT INTO raw_insert (run_id, at, entry) VALUES ($1, clock_timestamp(), $2::json)',
          values: [`env-${i}`, payload],
        });
      }
    }),
  );
  const rawPerS = appends / ((performance.now() - rawStarted) / 1000);
  rawDelay.disable();
  print({
    name: 'raw-insert-baseline',
    rows: appends,
    pool: poolSize,
    callers: environments,
    inserts_per_s: Math.round(rawPerS),
    event_loop_p99_ms: Number((rawDelay.percentile(99) / 1e6).toFixed(1)),
  });

  // Takeover: a holder in another process is SIGKILLed; how long until this process holds the lease.
  const holder = spawn(
    process.execPath,
    [fileURLToPath(new URL('../test/fixtures/lease-child.mjs', import.meta.url))],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        ...process.env,
        CG_PG_URL: url,
        CG_PG_SCHEMA: 'bench',
        CG_LEASE_MS: String(ttlMs),
        CG_ENVIRONMENT: 'takeover',
        CG_RUN_ID: 'run-holder',
      },
    },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    holder.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"wrote"')) resolve();
    });
    holder.once('exit', () => reject(new Error('the lease holder exited before writing')));
  });
  const other = postgresStore({ pool, schema: 'bench', leaseMs: ttlMs });
  const killedAt = performance.now();
  holder.kill('SIGKILL');
  let lock: Awaited<ReturnType<typeof other.lock>> | undefined;
  while (!lock) {
    try {
      lock = await other.lock('takeover', {
        runId: 'run-taker',
        pid: process.pid,
        host: hostname(),
        since: new Date().toISOString(),
      });
    } catch (err) {
      if ((err as { code?: string }).code !== 'CG_ENVIRONMENT_LOCKED') throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const takeoverS = (performance.now() - killedAt) / 1000;
  await lock.release();
  print({ name: 'takeover-after-sigkill', ttl_s: ttlMs / 1000, takeover_s: Number(takeoverS.toFixed(2)) });

  await other.close();
  await store.close();
  await pool.end();
  print({
    name: 'postgres-store',
    baseline: 'raw single-row INSERTs, same server (fsync on), same 10-connection pool, same run',
    environments,
    journal_appends_per_s: Math.round(appendsPerS),
    event_loop_p99_ms: Number(loopP99.toFixed(1)),
    raw_inserts_per_s: Math.round(rawPerS),
    appends_vs_raw_insert: Number((appendsPerS / rawPerS).toFixed(2)),
    ttl_s: ttlMs / 1000,
    takeover_s: Number(takeoverS.toFixed(2)),
  });
} finally {
  await server.destroy();
}
