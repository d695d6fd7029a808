import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortedError,
  ConfigInvalidError,
  gateDefaults,
  runGate,
  type Target,
  type Verdict,
  type Verifier,
  VerifierError,
  type VerifyContext,
} from '../src/index.js';

// A real loopback server scripts what each verifier measures: GET /<name> answers the next step of
// that verifier's script (`pass`, `fail`, `inconclusive`, `500` = the service errors, `hang` = never answers).
type Step = Verdict | '500' | '400' | 'hang';
const scripts = new Map<string, Step[]>();
const served = new Map<string, number>();
let server: http.Server;
let base: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const name = (req.url ?? '/').slice(1);
    const n = served.get(name) ?? 0;
    served.set(name, n + 1);
    const script = scripts.get(name) ?? [];
    const step = script[Math.min(n, script.length - 1)] ?? '500';
    if (step === 'hang') return; // never answers; the client's abort closes the socket
    if (step === '500' || step === '400') {
      res.writeHead(Number(step)).end('measurement backend broken');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ verdict: step }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** A verifier that measures over HTTP; a 5xx is an error that may pass on retry, a 4xx one that will not. */
function scripted(name: string, steps: Step[]): Verifier {
  scripts.set(name, steps);
  served.set(name, 0);
  return {
    name,
    async verify({ signal }) {
      const res = await fetch(`${base}/${name}`, { signal });
      if (!res.ok) {
        throw new VerifierError(`${name}: backend answered ${res.status}`, { retryable: res.status >= 500 });
      }
      const { verdict } = (await res.json()) as { verdict: Verdict };
      return {
        verdict,
        checks: [
          {
            name: `${name}.value`,
            verdict,
            observed: verdict,
            threshold: 'pass',
            reason: `scripted ${verdict}`,
            query: `${base}/${name}`,
          },
        ],
      };
    },
  } satisfies Verifier;
}

const target: Target = {
  name: 'none',
  async describe() {
    return { pools: [] };
  },
  async provision({ pool, version, replicas }) {
    return { name: pool, version, replicas, ready: replicas, weight: 0, endpoints: [] };
  },
  async retire() {},
};
const ctx = (signal?: AbortSignal): VerifyContext => ({
  environment: 'test',
  version: 'v2',
  pools: [],
  endpoint: base,
  target,
  signal,
});

describe('analysis gate', () => {
  it('passes after `count` measurements that all pass, and records each query and value', async () => {
    const result = await runGate('smoke', [scripted('a1', ['pass'])], ctx(), { count: 3, intervalMs: 10 });
    expect(result.verdict).toBe('pass');
    expect(result.measurements).toHaveLength(3);
    expect(result.measurements.map((m) => m.round)).toEqual([0, 1, 2]);
    expect(result.measurements[0]!.checks[0]).toMatchObject({ observed: 'pass', query: `${base}/a1` });
  });

  it('fails once failed measurements exceed failureLimit, and stops measuring', async () => {
    const result = await runGate('canary', [scripted('f1', ['fail', 'pass', 'fail', 'pass'])], ctx(), {
      count: 10,
      intervalMs: 5,
      failureLimit: 1,
    });
    expect(result.verdict).toBe('fail');
    expect(result.measurements).toHaveLength(3);
    expect(served.get('f1')).toBe(3);
    expect(result.reason).toMatch(/2 failed measurements > failureLimit 1/);
  });

  it('tolerates failures within failureLimit when other measurements pass', async () => {
    const result = await runGate('canary', [scripted('f2', ['fail', 'pass', 'pass'])], ctx(), {
      count: 3,
      intervalMs: 5,
      failureLimit: 1,
    });
    expect(result.verdict).toBe('pass');
  });

  it('turns inconclusive once inconclusive measurements exceed inconclusiveLimit', async () => {
    const result = await runGate(
      'canary',
      [scripted('i1', ['inconclusive', 'pass', 'inconclusive', 'pass'])],
      ctx(),
      {
        count: 6,
        intervalMs: 5,
        inconclusiveLimit: 1,
      },
    );
    expect(result.verdict).toBe('inconclusive');
    expect(result.measurements).toHaveLength(3);
  });

  it('never passes a verifier that never passed, even within every limit', async () => {
    const result = await runGate('canary', [scripted('i2', ['inconclusive'])], ctx(), {
      count: 2,
      intervalMs: 5,
      inconclusiveLimit: 5,
    });
    expect(result.verdict).toBe('inconclusive');
    expect(result.reason).toMatch(/no measurement passed/);
  });

  it('errors after more than consecutiveErrorLimit errors in a row', async () => {
    const result = await runGate('canary', [scripted('e1', ['500'])], ctx(), {
      count: 10,
      intervalMs: 5,
      consecutiveErrorLimit: 2,
    });
    expect(result.verdict).toBe('error');
    expect(result.measurements).toHaveLength(3);
    expect(result.measurements[2]!.error?.code).toBe('CG_VERIFIER_FAILED');
  });

  it('forgives errors that a pass interrupts, within consecutiveErrorLimit', async () => {
    const result = await runGate(
      'canary',
      [scripted('e2', ['500', '500', 'pass', '500', '500', 'pass'])],
      ctx(),
      {
        count: 6,
        intervalMs: 5,
        consecutiveErrorLimit: 2,
      },
    );
    expect(result.verdict).toBe('pass');
    expect(result.measurements.filter((m) => m.verdict === 'error')).toHaveLength(4);
  });

  it('ends a verifier at error at once when retrying cannot fix it (a bad query)', async () => {
    const result = await runGate('canary', [scripted('e3', ['400'])], ctx(), { count: 5, intervalMs: 5 });
    expect(result.verdict).toBe('error');
    expect(result.measurements).toHaveLength(1);
    expect(result.reason).toMatch(/retrying cannot fix it/);
  });

  it('passes early after consecutiveSuccessLimit passes in a row', async () => {
    const result = await runGate(
      'canary',
      [scripted('s1', ['pass', 'fail', 'pass', 'pass', 'pass'])],
      ctx(),
      {
        count: 20,
        intervalMs: 5,
        failureLimit: 1,
        consecutiveSuccessLimit: 2,
      },
    );
    expect(result.verdict).toBe('pass');
    expect(result.measurements).toHaveLength(4);
  });

  it('is inconclusive when count runs out before consecutiveSuccessLimit is reached', async () => {
    const result = await runGate('canary', [scripted('s2', ['pass', 'fail', 'pass'])], ctx(), {
      count: 3,
      intervalMs: 5,
      failureLimit: 1,
      consecutiveSuccessLimit: 2,
    });
    expect(result.verdict).toBe('inconclusive');
    expect(result.reason).toMatch(/ran out before 2 passes in a row/);
  });

  it('records a dry-run verifier that fails without failing the gate', async () => {
    const result = await runGate('canary', [scripted('d1', ['pass']), scripted('d2', ['fail'])], ctx(), {
      count: 2,
      intervalMs: 5,
      dryRun: ['d2'],
    });
    expect(result.verdict).toBe('pass');
    const dry = result.measurements.filter((m) => m.verifier === 'd2');
    expect(dry.length).toBeGreaterThan(0);
    expect(dry.every((m) => m.dryRun === true && m.verdict === 'fail')).toBe(true);
    expect(result.verifiers?.d2).toMatchObject({ verdict: 'fail', dryRun: true });
  });

  it('fails when any non-dry-run verifier fails, and stops the others', async () => {
    const result = await runGate(
      'canary',
      [scripted('m1', ['pass']), scripted('m2', ['pass', 'fail'])],
      ctx(),
      {
        count: 5,
        intervalMs: 5,
      },
    );
    expect(result.verdict).toBe('fail');
    expect(result.reason).toMatch(/^m2:/);
    expect(served.get('m1')).toBe(2);
    expect(result.verifiers?.m1).toMatchObject({
      verdict: undefined,
      reason: 'stopped undecided: m2 ended the gate fail',
    });
  });

  it('counts a measurement that outlives measurementTimeoutMs as an error', async () => {
    const result = await runGate('canary', [scripted('t1', ['hang'])], ctx(), {
      count: 1,
      measurementTimeoutMs: 200,
    });
    expect(result.verdict).toBe('error');
    expect(result.measurements[0]!.error?.code).toBe('CG_TIMEOUT');
  });

  it('aborts during the interval wait as soon as the signal fires', async () => {
    const controller = new AbortController();
    const gate = runGate('canary', [scripted('x1', ['pass'])], ctx(controller.signal), {
      count: 3,
      intervalMs: 60_000,
    });
    setTimeout(() => controller.abort(new Error('operator abort')), 200);
    const started = Date.now();
    await expect(gate).rejects.toBeInstanceOf(AbortedError);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(served.get('x1')).toBe(1);
  });

  it('aborts a measurement in flight, even one that never answers', async () => {
    const controller = new AbortController();
    const gate = runGate('canary', [scripted('x2', ['hang'])], ctx(controller.signal), { count: 1 });
    setTimeout(() => controller.abort(), 200);
    await expect(gate).rejects.toMatchObject({ code: 'CG_ABORTED' });
  });

  it('aborts during initialDelayMs before measuring anything', async () => {
    const controller = new AbortController();
    const gate = runGate('canary', [scripted('x3', ['pass'])], ctx(controller.signal), {
      initialDelayMs: 60_000,
    });
    setTimeout(() => controller.abort(), 100);
    await expect(gate).rejects.toBeInstanceOf(AbortedError);
    expect(served.get('x3')).toBe(0);
  });

  it.each([
    [{ count: 0 }, /count must be an integer >= 1/],
    [{ failureLimit: -1 }, /failureLimit/],
    [{ intervalMs: Number.NaN }, /intervalMs/],
    [{ consecutiveSuccessLimit: 1.5 }, /consecutiveSuccessLimit/],
    [{ measurementTimeoutMs: 0 }, /measurementTimeoutMs/],
    [{ dryRun: ['nope'] }, /dryRun names unknown verifiers: nope/],
  ])('rejects bad options %o before measuring anything', async (options, message) => {
    const v = scripted('bad', ['pass']);
    await expect(runGate('canary', [v], ctx(), options)).rejects.toSatisfy(
      (err: unknown) => err instanceof ConfigInvalidError && message.test((err as Error).message),
    );
    expect(served.get('bad')).toBe(0);
  });

  it('rejects a gate without verifiers: no data is never a pass', async () => {
    await expect(runGate('canary', [], ctx())).rejects.toBeInstanceOf(ConfigInvalidError);
  });

  it('uses exactly the defaults GateOptions documents', () => {
    const source = readFileSync(new URL('../src/analysis/types.ts', import.meta.url), 'utf8');
    const body = source.slice(
      source.indexOf('export interface GateOptions'),
      source.indexOf('export type GateVerdict'),
    );
    const documented = Object.fromEntries(
      [...body.matchAll(/@default ([^\n*]+?)(?: \(.*\))?\s*\*\/\s*(\w+)\?:/g)].map((m) => [
        m[2],
        m[1]!.trim(),
      ]),
    );
    const actual = Object.fromEntries(Object.entries(gateDefaults).map(([k, v]) => [k, JSON.stringify(v)]));
    expect(documented).toEqual(actual);
  });
});
