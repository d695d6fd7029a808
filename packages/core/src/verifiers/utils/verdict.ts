import type { Check, Verdict, VerifierResult } from '../../analysis/types.js';

/** `fail` if any check failed, else `inconclusive` if any could not tell, else `pass`; no checks is inconclusive. */
export function verdictOf(checks: readonly Check[]): Verdict {
  if (checks.length === 0) return 'inconclusive';
  if (checks.some((c) => c.verdict === 'fail')) return 'fail';
  if (checks.some((c) => c.verdict === 'inconclusive')) return 'inconclusive';
  return 'pass';
}

/** Wraps checks into a {@link VerifierResult}. */
export function resultOf(checks: Check[]): VerifierResult {
  return { verdict: verdictOf(checks), checks };
}

/** A check for a number against `{ min?, max? }`; `NaN` or `null` is inconclusive, never a pass. */
export function thresholdCheck(
  name: string,
  observed: number | null,
  threshold: { min?: number | undefined; max?: number | undefined },
  extra: { unit?: string; query?: string; context?: string } = {},
): Check {
  const unit = extra.unit ?? '';
  const words = [
    threshold.min !== undefined ? `>= ${threshold.min}${unit}` : undefined,
    threshold.max !== undefined ? `<= ${threshold.max}${unit}` : undefined,
  ]
    .filter(Boolean)
    .join(' and ');
  const base = { name, threshold: words, ...(extra.query !== undefined ? { query: extra.query } : {}) };
  const ctx = extra.context ? ` (${extra.context})` : '';
  if (observed === null || Number.isNaN(observed)) {
    return {
      ...base,
      verdict: 'inconclusive',
      observed: null,
      reason: `no value to judge (NaN or empty)${ctx}`,
    };
  }
  const low = threshold.min !== undefined && observed < threshold.min;
  const high = threshold.max !== undefined && observed > threshold.max;
  const ok = !low && !high;
  return {
    ...base,
    verdict: ok ? 'pass' : 'fail',
    observed,
    reason: ok
      ? `${observed}${unit} within ${words}${ctx}`
      : `${observed}${unit} ${low ? `below ${threshold.min}` : `above ${threshold.max}`}${unit}${ctx}`,
  };
}
