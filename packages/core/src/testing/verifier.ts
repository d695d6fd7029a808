import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Verifier, VerifierResult, VerifyContext } from '../analysis/types.js';
import { modelTarget } from './model-target.js';

/** Where a verifier is pointed for one test: a base URL, and how to stop what serves it. */
export interface VerifierFixture {
  /** Base URL of the version under test, e.g. `http://127.0.0.1:41234`. */
  endpoint: string;
  cleanup?(): Promise<void>;
}

/** Options of {@link testVerifier}. */
export interface VerifierSuiteOptions {
  /** Shown in the describe block. @default 'Verifier' */
  name?: string;
  /** Builds the verifier under test; called once per test. */
  create(): Verifier;
  /** Starts a version the verifier must pass (a healthy service on loopback). */
  passing(): Promise<VerifierFixture>;
  /** Starts a version the verifier must fail. */
  failing(): Promise<VerifierFixture>;
  /** Starts a service with nothing to measure. @default an HTTP server answering 404 with an empty body */
  noData?(): Promise<VerifierFixture>;
  /** Longest time `verify()` may take to settle once its signal aborts. @default 2000 */
  abortWithinMs?: number;
}

/** An HTTP server on 127.0.0.1:0 answering every request with `handler`'s status and body, or never. */
async function serve(answer: { status: number; body: string } | 'hang'): Promise<VerifierFixture> {
  const server: Server = createServer((req, res) => {
    if (answer === 'hang') return;
    req.resume();
    res.writeHead(answer.status, { 'content-type': 'text/plain' }).end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    cleanup: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The verdict, or `'threw'` when the verifier could not measure: both are fine where a pass is not. */
async function outcome(p: Promise<VerifierResult>): Promise<VerifierResult['verdict'] | 'threw'> {
  try {
    return (await p).verdict;
  } catch {
    return 'threw';
  }
}

/**
 * The conformance suite every {@link Verifier} passes: it passes a healthy version and fails a bad one
 * with named, judged and explained checks; it never passes without data (nothing to measure, or an
 * unreachable endpoint); and it stops when its signal aborts.
 *
 * @example
 * ```ts
 * import { testVerifier } from '@codegraph/release-core/testing'
 *
 * testVerifier({
 *   name: 'cache-hit-ratio',
 *   create: () => cacheHitRatio(0.9),
 *   passing: () => startMetricsServer('cache_hit_ratio 0.97'),
 *   failing: () => startMetricsServer('cache_hit_ratio 0.5'),
 * })
 * ```
 */
export function testVerifier(options: VerifierSuiteOptions): void {
  const fixtures: VerifierFixture[] = [];
  const track = async (f: Promise<VerifierFixture>) => {
    const fixture = await f;
    fixtures.push(fixture);
    return fixture;
  };
  const ctx = (endpoint: string, signal?: AbortSignal): VerifyContext => ({
    environment: 'conformance',
    version: 'v1.0.0',
    pools: [{ name: 'v1.0.0', version: 'v1.0.0', replicas: 1, ready: 1, weight: 100, endpoints: [endpoint] }],
    endpoint,
    target: modelTarget(),
    ...(signal ? { signal } : {}),
  });
  const abortWithinMs = options.abortWithinMs ?? 2_000;

  describe(`${options.name ?? 'Verifier'} conformance`, () => {
    afterEach(async () => {
      for (const f of fixtures.splice(0)) await f.cleanup?.();
    });

    it('passes a healthy version, with every check named, judged and explained', async () => {
      const verifier = options.create();
      expect(typeof verifier.name).toBe('string');
      const { endpoint } = await track(options.passing());
      const result = await verifier.verify(ctx(endpoint));
      expect(result.verdict).toBe('pass');
      expect(result.checks.length).toBeGreaterThan(0);
      for (const check of result.checks) {
        expect(check.name).toMatch(/\S/);
        expect(['pass', 'fail', 'inconclusive']).toContain(check.verdict);
        expect(check.reason).toMatch(/\S/);
        expect(check).toHaveProperty('observed');
      }
      expect(result.checks.every((c) => c.verdict === 'pass')).toBe(true);
    });

    it('fails a bad version, naming the failing check', async () => {
      const { endpoint } = await track(options.failing());
      const result = await options.create().verify(ctx(endpoint));
      expect(result.verdict).toBe('fail');
      expect(result.checks.some((c) => c.verdict === 'fail')).toBe(true);
    });

    it('never passes without data: nothing to measure is inconclusive or an error', async () => {
      const { endpoint } = await track(options.noData?.() ?? serve({ status: 404, body: '' }));
      expect(await outcome(options.create().verify(ctx(endpoint)))).not.toBe('pass');
    });

    it('never passes an endpoint that does not answer', async () => {
      const { endpoint, cleanup } = await serve({ status: 200, body: '' });
      await cleanup?.();
      expect(await outcome(options.create().verify(ctx(endpoint)))).not.toBe('pass');
    });

    it('stops when its signal aborts, without passing', async () => {
      const { endpoint } = await track(serve('hang'));
      const controller = new AbortController();
      const started = performance.now();
      const pending = outcome(options.create().verify(ctx(endpoint, controller.signal)));
      setTimeout(() => controller.abort(new Error('test aborts')), 100);
      expect(await pending).not.toBe('pass');
      expect(performance.now() - started).toBeLessThan(100 + abortWithinMs);
    });
  });
}
