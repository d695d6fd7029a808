import type { PoolTraffic } from '@codegraph/release-core';
import { describe, expect, it } from 'vitest';
import { judgeErrors, judgeLatency, resolveJudgeOptions } from '../src/judge.js';
import { fisherGreater, mannWhitney, normalCdf, normalQuantile, pairDiff, quantile } from '../src/stats.js';

/** A seeded generator (mulberry32), so the "known distributions" are the same on every run. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const normal = (r: () => number, mu: number, sigma: number) => () =>
  mu + sigma * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
const exponential = (r: () => number, meanMs: number) => () => -meanMs * Math.log(1 - r());
const sample = (n: number, draw: () => number) => Array.from({ length: n }, draw);

describe('normal distribution', () => {
  it('matches reference values of the CDF and the quantile', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.2345)).toBeCloseTo(0.8914916766, 6);
    expect(normalCdf(-1.96)).toBeCloseTo(0.0249979, 6);
    expect(normalQuantile(0.99)).toBeCloseTo(2.326347874, 7);
    expect(normalQuantile(0.01)).toBeCloseTo(-2.326347874, 7);
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
  });
});

describe('Mann–Whitney U', () => {
  it('reproduces the textbook example (U = 17, asymptotic two-sided p = 0.1113)', () => {
    const r = mannWhitney([19, 22, 16, 29, 24], [20, 11, 17, 12], 0.95);
    expect(r.u).toBe(17);
    expect(r.pValue).toBeCloseTo(0.11134688653, 6);
    expect(r.pGreater).toBeCloseTo(0.05567344327, 6);
  });

  it('handles ties with average ranks, as ClickHouse mannWhitneyUTest does (p = 0.54270)', () => {
    const left = [
      310, 195, 530, 155, 530, 245, 385, 450, 465, 545, 170, 180, 125, 180, 230, 75, 430, 480, 495, 295,
    ];
    const right = [
      116, 171, 176, 421, 111, 326, 481, 111, 346, 441, 261, 411, 206, 521, 456, 446, 296, 51, 426, 261,
    ];
    const r = mannWhitney(left, right, 0.95);
    expect(Math.min(r.u, 400 - r.u)).toBe(177);
    expect(Math.max(r.u, 400 - r.u)).toBe(223);
    expect(r.pValue).toBeCloseTo(0.5426959774, 6);
  });

  it('estimates an exact shift of 5 ms and puts it inside its confidence interval', () => {
    const base = sample(200, normal(rng(1), 20, 3));
    const r = mannWhitney(
      base.map((v) => v + 5),
      base,
      0.98,
    );
    expect(r.estimate).toBeCloseTo(5, 1);
    expect(r.lower).toBeLessThanOrEqual(5);
    expect(r.upper).toBeGreaterThanOrEqual(5);
  });

  it('finds no difference between two samples of one normal distribution', () => {
    const r = mannWhitney(sample(400, normal(rng(2), 10, 1)), sample(400, normal(rng(3), 10, 1)), 0.98);
    expect(r.pValue).toBeGreaterThan(0.02);
    expect(r.lower).toBeLessThan(0);
    expect(r.upper).toBeGreaterThan(0);
  });

  it('detects a five-fold slower exponential latency distribution', () => {
    const r = mannWhitney(sample(100, exponential(rng(4), 50)), sample(400, exponential(rng(5), 10)), 0.98);
    expect(r.pGreater).toBeLessThan(1e-9);
    expect(r.lower).toBeGreaterThan(0);
  });
});

describe('Fisher exact test', () => {
  it('gives the lady tasting tea p-value (0.2429)', () => {
    expect(fisherGreater({ failures: 3, total: 4 }, { failures: 1, total: 4 })).toBeCloseTo(0.2428571429, 8);
  });

  it('gives SciPy one-sided p for 5/100 errors against 2/1000 (1.0232e-4)', () => {
    expect(fisherGreater({ failures: 5, total: 100 }, { failures: 2, total: 1000 })).toBeCloseTo(
      1.0232448533e-4,
      9,
    );
  });

  it('is 1 when the canary has no errors, and when a side has no requests', () => {
    expect(fisherGreater({ failures: 0, total: 100 }, { failures: 10, total: 100 })).toBeCloseTo(1, 9);
    expect(fisherGreater({ failures: 0, total: 0 }, { failures: 1, total: 10 })).toBe(1);
  });
});

describe('canary judge classification', () => {
  const o = resolveJudgeOptions({});
  const traffic = (pool: string, requests: number, errors: number): PoolTraffic => ({
    pool,
    requests,
    errors,
    latencyMs: [],
    since: '2026-01-01T00:00:00Z',
  });

  it('fails a canary whose latency is five times the baseline', () => {
    const c = judgeLatency(sample(80, normal(rng(6), 25, 3)), sample(400, normal(rng(7), 5, 1)), o);
    expect(c.verdict).toBe('fail');
    expect(c.observed).toBeGreaterThan(4);
  });

  it('passes a canary whose latency is 20 % higher: significant, but within the allowed effect size', () => {
    const c = judgeLatency(sample(400, normal(rng(8), 12, 1)), sample(400, normal(rng(9), 10, 1)), o);
    expect(c.verdict).toBe('pass');
    expect(c.reason).toMatch(/no significant latency increase beyond 1.5x/);
  });

  it('passes a canary that is faster than its baseline', () => {
    expect(
      judgeLatency(sample(200, normal(rng(10), 5, 1)), sample(200, normal(rng(11), 10, 1)), o).verdict,
    ).toBe('pass');
  });

  it('fails 5 % errors against a clean baseline, and passes 1 error in 200', () => {
    expect(judgeErrors(traffic('v2', 200, 10), traffic('v1', 2000, 0), o).verdict).toBe('fail');
    expect(judgeErrors(traffic('v2', 200, 1), traffic('v1', 2000, 0), o).verdict).toBe('pass');
  });

  it('does not fail 3 errors in 40 requests against a baseline that errs as often', () => {
    expect(judgeErrors(traffic('v2', 40, 3), traffic('v1', 400, 30), o).verdict).toBe('pass');
  });

  it('computes the nearest-rank p95', () => {
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 100], 0.95)).toBe(19);
  });
});

describe('pairwise differences without building them', () => {
  it('selects exactly the order statistic a full sort gives, ties and all', () => {
    const r = rng(99);
    for (let trial = 0; trial < 30; trial++) {
      const m = 1 + Math.floor(r() * 40);
      const n = 1 + Math.floor(r() * 40);
      // Rounded values make many ties, as latencies in whole milliseconds do.
      const xs = Float64Array.from({ length: m }, () => Math.round(r() * 20)).sort();
      const ys = Float64Array.from({ length: n }, () => Math.round(r() * 20 + (trial % 3) * 0.37)).sort();
      const all: number[] = [];
      for (const x of xs) for (const y of ys) all.push(x - y);
      all.sort((a, b) => a - b);
      for (const k of [0, Math.floor(all.length / 3), all.length >> 1, all.length - 1]) {
        expect(pairDiff(xs, ys, k)).toBeCloseTo(all[k]!, 9);
      }
    }
  });
});
