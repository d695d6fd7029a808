import { existsSync } from 'node:fs';
import { blueGreen } from '@codegraph/strategy-bluegreen';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Answer,
  blueGreenEnv,
  type EnvOptions,
  type Faults,
  loadGenerator,
  poolPids,
  proxyLatency,
  validationSuite,
  viaNginx,
} from './helpers/env.js';

// End to end through a real nginx from Debian (`nginx-light`): weighted upstreams rewritten, checked with
// `nginx -t` and reloaded gracefully on every switch; the sample service replicas behind it.

const NGINX = '/usr/sbin/nginx';
beforeAll(() => {
  // Fails, never skips: a missing nginx is a broken test machine.
  if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing: run bash scripts/install-test-deps.sh`);
});

let cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  const errors: unknown[] = [];
  for (const fn of cleanups.reverse()) await fn().catch((err) => errors.push(err));
  cleanups = [];
  if (errors.length > 0) throw errors[0];
});

async function setup(options: EnvOptions & { faults?: Faults } = {}) {
  const env = await blueGreenEnv({ ...options, ...viaNginx(options.faults) });
  cleanups.push(async () => expect(await env.cleanup(), 'processes left running').toEqual([]));
  const plain = env.make({ strategy: blueGreen({ scaleDownDelayMs: 0 }), verifiers: [validationSuite()] });
  expect(await plain.release({ version: 'v1' })).toMatchObject({ status: 'succeeded', serving: 'v1' });
  const load = loadGenerator(await env.target.endpoint());
  cleanups.push(() => load.stop());
  await load.answeredBy('v1', 20);
  return { ...env, load };
}

const poolsOf = async (env: Awaited<ReturnType<typeof setup>>) =>
  (await env.target.describe()).pools.map((p) => [p.name, p.version, p.weight]);
const failed = (answers: Answer[]) => answers.filter((a) => !a.ok);

describe('blue-green through real nginx under continuous load', () => {
  it('switches every request from blue to green in one reload and retires blue after the delay, with zero failed requests', async () => {
    const env = await setup({ strategy: { scaleDownDelayMs: 1_000 } });
    const result = await env.engine.release({ version: 'v2' });
    await env.load.answeredBy('v2', 50);
    const answers = await env.load.stop();

    expect(result).toMatchObject({ status: 'succeeded', from: 'v1', serving: 'v2' });
    expect(failed(answers)).toEqual([]);
    const routed = env.events.find(
      (e) => e.type === 'action.finished' && e.runId === result.runId && e.action.type === 'route',
    );
    expect(answers.filter((a) => a.start > routed!.at && (a.version !== 'v2' || a.pool !== 'green'))).toEqual(
      [],
    );
    expect(env.actions('deploy', result.runId)).toEqual([
      'provision green',
      'analyze',
      'route',
      'analyze',
      'promote green',
      'pause',
      'retire blue',
    ]);
    expect(await poolsOf(env)).toEqual([['green', 'v2', 100]]);
  });

  it('switches back to warm blue at once when green breaks the p95 SLO measured by nginx, with zero failed requests', async () => {
    const env = await setup({
      faults: { v2: { FAULT_LATENCY_MS: '300' } },
      verifiers: [validationSuite(), proxyLatency(200)],
      strategy: {
        prePromotionAnalysis: { verifiers: ['http-validation'] },
        postPromotionAnalysis: {
          verifiers: ['proxy-latency'],
          gate: {
            initialDelayMs: 300,
            intervalMs: 300,
            count: 10,
            inconclusiveLimit: 9,
            consecutiveSuccessLimit: 3,
          },
        },
        abortScaleDownDelayMs: 0,
      },
    });
    const bluePids = poolPids(env.stateDir, 'blue');
    const result = await env.engine.release({ version: 'v2' });
    await env.load.answeredBy('v1', 50);
    const answers = await env.load.stop();

    expect(result).toMatchObject({ status: 'rolled-back', serving: 'v1' });
    expect(result.analyses.find((a) => a.name === 'post-promotion')?.verdict).toBe('fail');
    expect(failed(answers)).toEqual([]);
    expect(answers.some((a) => a.version === 'v2')).toBe(true);
    const back = env.events.find(
      (e) => e.type === 'action.finished' && e.phase === 'undo' && e.action.type === 'route',
    );
    expect(answers.filter((a) => a.start > back!.at && a.version !== 'v1')).toEqual([]);
    expect(env.actions('undo', result.runId)).toEqual(['route', 'promote blue', 'retire green']);
    expect(poolPids(env.stateDir, 'blue')).toEqual(bluePids);
    expect(await poolsOf(env)).toEqual([['blue', 'v1', 100]]);
  });

  it.each([
    ['FAULT_MISSING_HEADERS', { FAULT_MISSING_HEADERS: 'content-security-policy' }],
    ['FAULT_ERROR_RATE', { FAULT_ERROR_RATE: '0.1' }],
  ])(
    'never routes a request through nginx to a preview that fails the validation suite (%s)',
    async (_, fault) => {
      const env = await setup({ faults: { v2: fault }, strategy: { scaleDownDelayMs: 0 } });
      const result = await env.engine.release({ version: 'v2' });
      await env.load.answeredBy('v1', 50);
      const answers = await env.load.stop();

      expect(result).toMatchObject({ status: 'rolled-back', serving: 'v1' });
      expect(result.analyses.find((a) => a.name === 'pre-promotion')?.verdict).toBe('fail');
      expect(failed(answers)).toEqual([]);
      expect(answers.filter((a) => a.version !== 'v1' || a.pool !== 'blue')).toEqual([]);
      expect(await poolsOf(env)).toEqual([['blue', 'v1', 100]]);
    },
  );
});
