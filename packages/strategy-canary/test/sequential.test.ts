import { rateAboveLimit, TwoSampleEventTest } from '@codegraph/release-core';
import { describe, expect, it } from 'vitest';
import { fisherGreater } from '../src/stats.js';

/** A seeded generator (mulberry32): the simulated canaries are the same on every run. */
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
const binomial = (r: () => number, n: number, p: number) => {
  let k = 0;
  for (let i = 0; i < n; i++) if (r() < p) k++;
  return k;
};

// 1,000 A/A canaries, each looked at 60 times (one look a second for a minute, 100 requests a second
// per pool, 0.5 % errors on both): how many are ever failed.
const RUNS = 1000;
const LOOKS = 60;

describe('repeated looks at a growing sample', () => {
  it('keep the sequential error test under α = 0.01, where a fixed-sample test at 0.01 each look does not', () => {
    const r = rng(42);
    let sequential = 0;
    let naive = 0;
    for (let run = 0; run < RUNS; run++) {
      const test = new TwoSampleEventTest();
      const c = { trials: 0, events: 0 };
      const b = { trials: 0, events: 0 };
      let seqHit = false;
      let naiveHit = false;
      for (let look = 0; look < LOOKS; look++) {
        c.trials += 100;
        b.trials += 100;
        c.events += binomial(r, 100, 0.005);
        b.events += binomial(r, 100, 0.005);
        test.update(c, b);
        if (test.rejects(0.01)) seqHit = true;
        const p = fisherGreater(
          { failures: c.events, total: c.trials },
          { failures: b.events, total: b.trials },
        );
        if (p < 0.01) naiveHit = true;
      }
      if (seqHit) sequential++;
      if (naiveHit) naive++;
    }
    expect(sequential / RUNS).toBeLessThanOrEqual(0.01);
    // Looking 60 times at a 1 %-level fixed-sample test fails several times more healthy canaries.
    expect(naive / RUNS).toBeGreaterThan(2 * 0.01);
  });

  it('keep the rate-above-limit test under α when the true rate sits exactly at the limit', () => {
    const r = rng(7);
    let hits = 0;
    for (let run = 0; run < RUNS; run++) {
      let events = 0;
      let trials = 0;
      for (let look = 0; look < LOOKS; look++) {
        trials += 20;
        events += binomial(r, 20, 0.02);
        if (rateAboveLimit({ events, trials, limit: 0.02, alpha: 0.01 }).above) {
          hits++;
          break;
        }
      }
    }
    expect(hits / RUNS).toBeLessThanOrEqual(0.01);
  });

  it('still catches a canary with 5 % errors against a 0.1 % baseline within a few looks', () => {
    const r = rng(3);
    const looksToDetect: number[] = [];
    for (let run = 0; run < 200; run++) {
      const test = new TwoSampleEventTest();
      const c = { trials: 0, events: 0 };
      const b = { trials: 0, events: 0 };
      for (let look = 1; look <= LOOKS; look++) {
        c.trials += 100;
        b.trials += 100;
        c.events += binomial(r, 100, 0.05);
        b.events += binomial(r, 100, 0.001);
        test.update(c, b);
        if (test.rejects(0.01)) {
          looksToDetect.push(look);
          break;
        }
      }
    }
    expect(looksToDetect).toHaveLength(200);
    expect(Math.max(...looksToDetect)).toBeLessThanOrEqual(5);
  });

  it('never fails a 2 % limit on one error in 20 requests, and fails 5 % errors in 500', () => {
    expect(rateAboveLimit({ events: 1, trials: 20, limit: 0.02 }).above).toBe(false);
    const five = rateAboveLimit({ events: 25, trials: 500, limit: 0.02 });
    expect(five.above).toBe(true);
    expect(five.lower).toBeGreaterThan(0.02);
    expect(five.lower).toBeLessThan(0.05);
  });
});
