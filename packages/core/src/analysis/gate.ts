import { serializeError } from '../errors.js';
import type { AnalysisResult, GateOptions, Measurement, Verifier, VerifyContext } from './types.js';

/**
 * Runs verifiers under gate semantics and returns the gate's verdict with every measurement.
 * (Minimal first version: one measurement round; the full Argo-style semantics replace it.)
 */
export async function runGate(
  name: string,
  verifiers: readonly Verifier[],
  ctx: VerifyContext,
  options: GateOptions = {},
): Promise<AnalysisResult> {
  void options;
  const measurements: Measurement[] = [];
  for (const verifier of verifiers) {
    const at = new Date().toISOString();
    try {
      const result = await verifier.verify(ctx);
      measurements.push({ verifier: verifier.name, at, verdict: result.verdict, checks: result.checks });
    } catch (err) {
      measurements.push({
        verifier: verifier.name,
        at,
        verdict: 'error',
        checks: [],
        error: serializeError(err),
      });
    }
  }
  const bad = measurements.find((m) => m.verdict !== 'pass');
  return {
    name,
    verdict: bad ? bad.verdict : 'pass',
    reason: bad ? `${bad.verifier}: ${bad.verdict}` : 'every verifier passed',
    measurements,
  };
}
