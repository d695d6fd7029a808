import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NginxHarness, requireNginx, sampleCommand } from '../../target-nginx/test/helpers.js';
import {
  createPipeline,
  createReleaseEngine,
  fileStore,
  type PipelineEvent,
  rolling,
  silentLogger,
  type Target,
  type Verifier,
} from '../src/index.js';
import { serviceChecks } from './helpers/release-env.js';

// staging → production, each behind its own real nginx. v2 answers half its searches with 500s (the
// staging engine's own verification catches it); v4 is correct but slow (the pipeline's extra
// performance gate on staging catches it). Neither may reach production; v3 does.
const faults = { v2: { FAULT_ERROR_RATE: '0.5' }, v4: { FAULT_LATENCY_MS: '300' } };

/** The guide's performance check: p95 of 10 searches through the stage's front door under 150 ms. */
const searchLatency: Verifier = {
  name: 'search-p95',
  async verify({ endpoint, signal }) {
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) {
      const start = performance.now();
      const res = await request(`${endpoint}/api/v1/search?q=graph`, { signal });
      await res.body.dump();
      samples.push(performance.now() - start);
    }
    const p95 = samples.sort((a, b) => a - b)[Math.ceil(samples.length * 0.95) - 1]!;
    const ok = p95 < 150;
    return {
      verdict: ok ? 'pass' : 'fail',
      checks: [
        {
          name: 'search.p95_ms',
          verdict: ok ? 'pass' : 'fail',
          observed: Math.round(p95),
          threshold: 150,
          reason: `p95 ${Math.round(p95)} ms`,
        },
      ],
    };
  },
};

const harness = new NginxHarness();
beforeAll(requireNginx);
afterEach(async () => {
  expect(await harness.cleanup()).toEqual([]);
});

async function health(target: Target): Promise<{ version: string; pool: string | null }> {
  const res = await request(`${(await target.describe()).endpoint}/health`);
  const body = (await res.body.json()) as { version: string };
  return { version: body.version, pool: (res.headers['x-codegraph-pool'] as string | undefined) ?? null };
}

describe('pipeline through real nginx targets', () => {
  it('a bad version stops at staging and never reaches production; a good one reaches production', async () => {
    const dir = await harness.dir('cg-pipeline-nginx-');
    const stage = async (environment: string) => {
      const target = await harness.target({
        stateDir: join(dir, environment),
        command: sampleCommand(faults),
        drainTimeoutMs: 500,
      });
      const engine = createReleaseEngine({
        environment,
        target,
        strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
        store: fileStore({ dir: join(dir, `${environment}-store`) }),
        verifiers: [serviceChecks],
        replicas: 1,
        metrics: false,
        logger: silentLogger,
      });
      return { target, engine };
    };
    await fs.mkdir(join(dir, 'staging'));
    await fs.mkdir(join(dir, 'production'));
    const staging = await stage('staging');
    const production = await stage('production');
    const pipeline = createPipeline({
      name: 'search',
      store: fileStore({ dir: join(dir, 'pipeline-store') }),
      logger: silentLogger,
      checkEveryMs: 50,
      stages: [
        { name: 'staging', ...staging, verify: { verifiers: [searchLatency] } },
        { name: 'production', ...production, soakMs: 200 },
      ],
    });
    const events: PipelineEvent[] = [];
    pipeline.on('*', (e) => events.push(e));

    expect(await pipeline.promote('v1')).toMatchObject({ status: 'succeeded', reached: 'production' });
    expect(await health(production.target)).toEqual({ version: 'v1', pool: 'v1' });

    const errors = await pipeline.promote('v2');
    expect(errors).toMatchObject({ status: 'rolled-back', stoppedAt: 'staging' });
    expect(errors.reached).toBeUndefined();
    expect((await health(staging.target)).version).toBe('v1');

    const slow = await pipeline.promote('v4');
    expect(slow).toMatchObject({ status: 'rolled-back', stoppedAt: 'staging' });
    expect(slow.reason).toContain('search-p95');
    expect(slow.stages[0]!.gate?.verdict).toBe('fail');
    expect((await health(staging.target)).version).toBe('v1');

    // Neither bad version ever ran in production.
    expect((await production.engine.history()).map((h) => h.version)).toEqual(['v1']);
    expect(
      events.filter((e) => e.type === 'pipeline.stage.started' && e.stage === 'production'),
    ).toHaveLength(1);

    expect(await pipeline.promote('v3')).toMatchObject({ status: 'succeeded', reached: 'production' });
    expect(await health(staging.target)).toEqual({ version: 'v3', pool: 'v3' });
    expect(await health(production.target)).toEqual({ version: 'v3', pool: 'v3' });
    const status = await pipeline.status();
    expect(status.stages.map((s) => [s.stage, s.serving, s.state])).toEqual([
      ['staging', 'v3', 'succeeded'],
      ['production', 'v3', 'succeeded'],
    ]);
    await pipeline.close();
  });
});
