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
});

/**
 * Judges each pool under test on the figures the target's own proxy recorded (the optional
 * `traffic(pool)` capability: requests, errors, latency samples), so a canary can be judged without
 * Prometheus. Per pool it reports `requests[pool]`, `error_rate[pool]` and `p95_latency_ms[pool]`.
 * A pool that served fewer than `minRequests` is `inconclusive`, never a pass. A target without
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
        const rate = enough ? t.errors / t.requests : null;
        checks.push(
          thresholdCheck(
            `error_rate[${pool}]`,
            rate,
            { max: o.maxErrorRate },
            { query, context: `${t.errors}/${t.requests} failed` },
          ),
        );
        const p95 =
          enough && t.latencyMs.length > 0 ? Math.round(percentile(t.latencyMs, 0.95) * 100) / 100 : null;
        checks.push(
          thresholdCheck(
            `p95_latency_ms[${pool}]`,
            p95,
            { max: o.maxP95LatencyMs },
            { unit: ' ms', query, context: `${t.latencyMs.length} samples` },
          ),
        );
      }
      return resultOf(checks);
    },
  } satisfies Verifier;
}
