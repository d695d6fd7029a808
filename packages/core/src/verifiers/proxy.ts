import { rateAboveLimit } from '../analysis/sequential.js';
import type { Check, Verifier, VerifierResult, VerifyContext } from '../analysis/types.js';
import { CapabilityMissingError, ConfigInvalidError } from '../errors.js';
import { percentile } from './utils/stats.js';
import { resultOf, thresholdCheck } from './utils/verdict.js';

/**
 * Options of {@link proxyAnalysis}.
 *
 * @example
 * ```ts
 * proxyAnalysis({ pools: ['canary'], minRequests: 200, maxErrorRate: 0.01 })
 * ```
 */
export interface ProxyAnalysisOptions {
  /** The verifier's name. @default 'proxy-analysis' */
  name?: string;
  /** Highest share of failed requests (the target's `errors / requests`), 0..1. @default 0.05 */
  maxErrorRate?: number;
  /** Highest p95 of the recorded latency samples, in milliseconds (the seed's "Sub-50ms P95"). @default 50 */
  maxP95LatencyMs?: number;
  /** Fewest requests a pool must have served before it is judged; fewer is `inconclusive`. @default 20 */
  minRequests?: number;
  /** Pools to judge. @default the pools under test (`ctx.pools`) */
  pools?: string[];
  /**
   * α of the sequential limit tests: the chance a pool whose true error rate (or share of requests slower
   * than `maxP95LatencyMs`) is at the limit is ever failed, however often the gate looks. @default 0.01
   */
  alpha?: number;
}

/**
 * The defaults {@link ProxyAnalysisOptions} documents.
 *
 * @example
 * ```ts
 * const need = options.minRequests ?? proxyAnalysisDefaults.minRequests
 * ```
 */
export const proxyAnalysisDefaults = Object.freeze({
  name: 'proxy-analysis',
  maxErrorRate: 0.05,
  maxP95LatencyMs: 50,
  minRequests: 20,
  alpha: 0.01,
});

/**
 * Judges each pool under test on the figures the target's own proxy recorded (the optional
 * `traffic(pool)` capability: requests, errors, latency samples), so a canary can be judged without
 * Prometheus. Per pool it reports `requests[pool]`, `error_rate[pool]` and `p95_latency_ms[pool]`.
 * A pool that served fewer than `minRequests` is `inconclusive`, never a pass.
 *
 * Limits respect sample size: a limit fails only when a sequential (anytime-valid) test says the true
 * value is past it at level `alpha` (0.01): the error rate from `errors / requests`, the p95 as "more
 * than 5 % of the latency samples are slower than `maxP95LatencyMs`". One error in 20 requests at a 2 %
 * limit is not a failure; 5 % errors are, after a few hundred requests. However many times a gate looks,
 * a pool at its limit is failed with probability at most `alpha`. Latency samples are the target's most
 * recent ones (a bounded ring), so the p95 test is approximate over long runs. A target without
 * `traffic` makes `verify` throw {@link CapabilityMissingError} (a gate ends `error` at once).
 *
 * @example
 * ```ts
 * const canaryCheck = proxyAnalysis({ maxErrorRate: 0.01, maxP95LatencyMs: 50, minRequests: 100 })
 * await runGate('canary-10', [canaryCheck], ctx, { count: 6, intervalMs: 10_000 })
 * ```
 */
export function proxyAnalysis(options: ProxyAnalysisOptions = {}) {
  const given = Object.fromEntries(
    Object.entries(options).filter(([, v]) => v !== undefined),
  ) as ProxyAnalysisOptions;
  const o: Required<Omit<ProxyAnalysisOptions, 'pools'>> & Pick<ProxyAnalysisOptions, 'pools'> = {
    ...proxyAnalysisDefaults,
    ...given,
  };
  const bad = (field: string, rule: string) =>
    new ConfigInvalidError(
      `proxyAnalysis option ${field} must be ${rule}, got ${JSON.stringify(o[field as keyof typeof o])}`,
      {
        details: { field },
      },
    );
  if (typeof o.maxErrorRate !== 'number' || !(o.maxErrorRate >= 0 && o.maxErrorRate <= 1))
    throw bad('maxErrorRate', 'a number in 0..1');
  if (
    typeof o.maxP95LatencyMs !== 'number' ||
    !(o.maxP95LatencyMs > 0) ||
    !Number.isFinite(o.maxP95LatencyMs)
  ) {
    throw bad('maxP95LatencyMs', 'a number > 0');
  }
  if (!Number.isInteger(o.minRequests) || o.minRequests < 1) throw bad('minRequests', 'an integer >= 1');
  if (typeof o.alpha !== 'number' || !(o.alpha > 0 && o.alpha < 0.5))
    throw bad('alpha', 'a number in (0, 0.5)');
  if (
    o.pools !== undefined &&
    (!Array.isArray(o.pools) || o.pools.some((p) => typeof p !== 'string' || p === ''))
  ) {
    throw bad('pools', 'an array of pool names');
  }
  return {
    name: o.name,
    async verify(ctx: VerifyContext): Promise<VerifierResult> {
      const target = ctx.target;
      if (typeof target.traffic !== 'function') {
        throw new CapabilityMissingError(
          `proxyAnalysis needs per-pool traffic figures, but target ${target.name} has no traffic(pool) capability; use prometheusAnalysis instead`,
          { plugin: o.name, details: { target: target.name, capability: 'traffic' } },
        );
      }
      const pools = o.pools ?? ctx.pools.map((p) => p.name);
      if (pools.length === 0) {
        throw new ConfigInvalidError(
          'proxyAnalysis has no pool to judge: ctx.pools is empty and no pools were given',
        );
      }
      const checks: Check[] = [];
      for (const pool of pools) {
        const t = await target.traffic(pool, { signal: ctx.signal, logger: ctx.logger });
        const query = `${target.name}.traffic(${pool}) since ${t.since}`;
        const enough = t.requests >= o.minRequests;
        checks.push({
          name: `requests[${pool}]`,
          verdict: enough ? 'pass' : 'inconclusive',
          observed: t.requests,
          threshold: `>= ${o.minRequests}`,
          query,
          reason: enough
            ? `${t.requests} requests`
            : `only ${t.requests} requests; at least ${o.minRequests} are needed to judge`,
        });
        checks.push(
          enough
            ? limitCheck(`error_rate[${pool}]`, pool, query, {
                events: t.errors,
                trials: t.requests,
                limit: o.maxErrorRate,
                alpha: o.alpha,
                observed: round4(t.errors / t.requests),
                threshold: `<= ${o.maxErrorRate}`,
                facts: `${t.errors}/${t.requests} failed`,
              })
            : thresholdCheck(`error_rate[${pool}]`, null, { max: o.maxErrorRate }, { query }),
        );
        const n = t.latencyMs.length;
        const slow = t.latencyMs.filter((v) => v > o.maxP95LatencyMs).length;
        checks.push(
          enough && n > 0
            ? limitCheck(`p95_latency_ms[${pool}]`, pool, query, {
                // p95 <= limit exactly when at most 5 % of requests are slower than the limit.
                events: slow,
                trials: n,
                limit: 0.05,
                alpha: o.alpha,
                observed: Math.round(percentile(t.latencyMs, 0.95) * 100) / 100,
                threshold: `<= ${o.maxP95LatencyMs} ms`,
                facts: `${slow}/${n} samples slower than ${o.maxP95LatencyMs} ms`,
                unit: ' ms',
              })
            : thresholdCheck(
                `p95_latency_ms[${pool}]`,
                null,
                { max: o.maxP95LatencyMs },
                { unit: ' ms', query },
              ),
        );
      }
      return resultOf(checks);
    },
  } satisfies Verifier;
}

const round4 = (v: number) => Math.round(v * 10_000) / 10_000;

/** A limit judged by the sequential rate test: fails only when the evidence says the true rate is past it. */
function limitCheck(
  name: string,
  pool: string,
  query: string,
  x: {
    events: number;
    trials: number;
    limit: number;
    alpha: number;
    observed: number;
    threshold: string;
    facts: string;
    unit?: string;
  },
): Check {
  const e = rateAboveLimit({ events: x.events, trials: x.trials, limit: x.limit, alpha: x.alpha });
  const unit = x.unit ?? '';
  return {
    name,
    pool,
    query,
    samples: x.trials,
    threshold: x.threshold,
    observed: x.observed,
    verdict: e.above ? 'fail' : 'pass',
    reason: e.above
      ? `${x.observed}${unit} past ${x.threshold} (${x.facts}; the rate's lower bound ${round4(e.lower)} is above ${x.limit} at α ${x.alpha})`
      : `${x.observed}${unit}, not shown past ${x.threshold} (${x.facts}; e-value ${Math.round(e.eValue * 100) / 100} < ${1 / x.alpha})`,
  };
}
