import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { prometheusAnalysis } from '@codegraph/release-core';
import { canary, canaryJudge } from '@codegraph/strategy-canary';
import { nginxTarget } from '@codegraph/target-nginx';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { baseLatency, engineOn, type Faults, sampleServer, shifts } from './helpers/env.js';
import { type RunningPrometheus, relativeSlo, startPrometheus } from './helpers/prometheus.js';
import { expectRolledBack, failedChecks, releaseUnderLoad, type ScenarioEnv } from './helpers/scenarios.js';

// Real nginx (weighted upstreams, reloaded on every change) in front of the sample service; a real
// Prometheus scraping every replica through the file_sd file nginxTarget keeps (pool and version labels);
// the statistical judge reading nginx's access log through `traffic(pool)`, against a baseline pool.
let prom: RunningPrometheus;
beforeAll(async () => {
  prom = await startPrometheus();
});
afterAll(async () => {
  await prom?.stop();
});
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const gate = { count: 20, intervalMs: 1000, inconclusiveLimit: 15, consecutiveSuccessLimit: 3 };
const strategy = canary({
  weights: [20, 40],
  baseline: true,
  analysis: { verifiers: ['prometheus', 'judge'], gate },
});

async function serving(faults: Faults): Promise<ScenarioEnv> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cg-canary-nginx-'));
  const target = nginxTarget({
    stateDir: path.join(dir, 'nginx'),
    readyTimeoutMs: 10_000,
    stopTimeoutMs: 3_000,
    prometheusFileSd: prom.fileSd,
    command: ({ version, port }) => ({
      command: process.execPath,
      args: [sampleServer, '--port', String(port), '--version', version],
      env: { ...baseLatency, ...faults[version] },
    }),
  });
  cleanups.push(async () => {
    await target.destroy().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });
  const slo = prometheusAnalysis({
    url: prom.url,
    metrics: relativeSlo(),
  });
  const judge = canaryJudge({ thresholds: { errorRate: 0.02 } });
  const { engine, events } = engineOn(target, dir, { strategy, verifiers: [slo, judge] });
  expect((await engine.release({ version: 'v1' })).status).toBe('succeeded');
  await prom.waitFor('up{pool="v1"} == 1');
  return { engine, events, target, front: await target.endpoint() };
}

// One Prometheus serves every test: each scenario releases its own version name, so a retired pool's
// last samples (still inside a rate window) never count for the next test's canary.
describe('canary through a real nginx, judged by a real Prometheus and the access log', () => {
  it('promotes a good version through every step with no failed request', async () => {
    const env = await serving({});
    const run = await releaseUnderLoad(env, 'v2');
    expect(run.result.status, run.result.reason).toBe('succeeded');
    expect(run.result.analyses.map((a) => [a.name, a.verdict])).toEqual([
      ['canary-20', 'pass'],
      ['canary-40', 'pass'],
      ['verify', 'pass'],
    ]);
    expect(shifts(run.events).map((s) => s.weights)).toEqual([
      { v1: 60, v2: 20, 'baseline-v1': 20 },
      { v1: 20, v2: 40, 'baseline-v1': 40 },
      { v2: 100 },
    ]);
    expect(run.samples.filter((s) => s.status !== 200)).toEqual([]);
    expect(new Set(run.samples.map((s) => s.pool))).toEqual(new Set(['v1', 'v2', 'baseline-v1']));
  });

  it('rolls traffic back to stable when the canary answers five times slower', async () => {
    const env = await serving({ v3: { FAULT_LATENCY_MS: '25' } });
    const run = await releaseUnderLoad(env, 'v3');
    const failed = failedChecks(run.result.analyses);
    expect(
      failed.some((c) => c === 'latency.mann_whitney' || c === 'latency_mean_ratio[v3]'),
      failed.join(),
    ).toBe(true);
    await expectRolledBack(env, run, 'v3', 'v1');
  });

  it('rolls traffic back to stable when 5 % of the canary requests fail', async () => {
    const env = await serving({ v4: { FAULT_ERROR_RATE: '0.05' } });
    const run = await releaseUnderLoad(env, 'v4');
    const failed = failedChecks(run.result.analyses);
    expect(
      failed.some((c) => c.startsWith('errors.') || c === 'error_rate[v4]'),
      failed.join(),
    ).toBe(true);
    await expectRolledBack(env, run, 'v4', 'v1');
  });
});
