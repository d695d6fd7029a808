import { Agent } from 'undici';
import type { Check, Verifier, VerifierResult, VerifyContext } from '../../analysis/types.js';
import { AbortedError } from '../../errors.js';
import { redactor } from '../utils/redact.js';
import { resultOf } from '../utils/verdict.js';
import {
  authChecks,
  graphqlCheck,
  headerChecks,
  healthChecks,
  http2Check,
  metricsChecks,
  type Suite,
} from './checks.js';
import {
  type ResolvedValidation,
  resolveValidation,
  type ValidationChecks,
  type ValidationOptions,
} from './options.js';
import { concurrencyChecks, latencyChecks } from './performance.js';

/** The order the checks run in, as the seed's `validate.sh` does. */
const order: Array<[keyof ValidationChecks, (s: Suite) => Promise<Check[]>]> = [
  ['health', healthChecks],
  ['auth', authChecks],
  ['http2', http2Check],
  ['graphql', graphqlCheck],
  ['metrics', metricsChecks],
  ['latency', latencyChecks],
  ['concurrency', concurrencyChecks],
  ['securityHeaders', headerChecks],
];

async function run(o: ResolvedValidation): Promise<VerifierResult> {
  const redact = redactor([o.apiKey]);
  const dispatcher = new Agent({
    connections: 8,
    headersTimeout: o.requestTimeoutMs,
    bodyTimeout: o.requestTimeoutMs,
    ...(o.ca ? { connect: { ca: o.ca } } : {}),
  });
  const suite: Suite = { o, dispatcher, redact };
  const checks: Check[] = [];
  try {
    for (const [key, fn] of order) {
      if (!o.checks[key]) continue;
      if (o.signal?.aborted) throw new AbortedError('validation was cancelled', { cause: o.signal.reason });
      const found = (await fn(suite)).map((c) => redactCheck(c, redact));
      for (const c of found) log(o, c);
      checks.push(...found);
      // An unreachable or unhealthy service fails every other check for the same reason: stop here.
      if (key === 'health' && found[0]?.verdict === 'fail') break;
    }
  } catch (err) {
    if (o.signal?.aborted) {
      throw err instanceof AbortedError
        ? err
        : new AbortedError('validation was cancelled', { cause: o.signal.reason });
    }
    if (err instanceof Error) err.message = redact(err.message);
    throw err;
  } finally {
    await dispatcher.destroy();
  }
  return resultOf(checks);
}

function redactCheck(c: Check, redact: (t: string) => string): Check {
  return {
    ...c,
    reason: redact(c.reason),
    ...(typeof c.observed === 'string' ? { observed: redact(c.observed) } : {}),
    ...(typeof c.threshold === 'string' ? { threshold: redact(c.threshold) } : {}),
    ...(c.query !== undefined ? { query: redact(c.query) } : {}),
  };
}

function log(o: ResolvedValidation, c: Check): void {
  const line = `validation ${c.name}: ${c.verdict} (${c.reason})`;
  const fields = { check: c.name, observed: c.observed, threshold: c.threshold };
  if (c.verdict === 'fail') o.logger?.warn(line, fields);
  else if (o.verbose) o.logger?.info(line, fields);
  else o.logger?.debug(line, fields);
}

/**
 * Runs the deployment validation suite once against `baseUrl`, the way the seed's
 * `scripts/deploy/validate.sh` does: health (status, JSON body, version), authentication (401/403
 * without the API key, 2xx with it), HTTP/2, a GraphQL query, Prometheus `/metrics`, response-time
 * percentiles, concurrent requests, and security headers. Each check reports its name, observed value,
 * threshold, verdict and a one-line reason; the API key never appears in them, in errors or in logs.
 *
 * When the health check fails no other check runs. Bad options throw `ConfigInvalidError` before any
 * request; `signal` aborting rejects with `AbortedError`.
 *
 * @example
 * ```ts
 * import { fromEnv, validateDeployment } from '@codegraph/release-core'
 * const { verdict, checks } = await validateDeployment({ ...fromEnv(), expectedVersion: 'v1.2.3' })
 * for (const c of checks) console.log(c.verdict, c.name, c.observed, c.threshold, c.reason)
 * process.exitCode = verdict === 'pass' ? 0 : 1
 * ```
 */
export async function validateDeployment(options: ValidationOptions): Promise<VerifierResult> {
  return run(resolveValidation(options));
}

/**
 * Options of {@link httpValidation}: the suite's options plus the verifier's name.
 *
 * @example
 * ```ts
 * httpValidation({ name: 'smoke', checks: { concurrency: false } })
 * ```
 */
export interface HttpValidationOptions extends Omit<ValidationOptions, 'signal' | 'logger'> {
  /** The verifier's name in gates and journals. @default 'http-validation' */
  name?: string;
}

/**
 * The deployment validation suite as a {@link Verifier}: checks `ctx.endpoint` (unless `baseUrl` is
 * given) and expects `/health` to report `ctx.version` (unless `expectedVersion` is given). Options are
 * validated when the verifier is made, before any request.
 *
 * @example
 * ```ts
 * const suite = httpValidation({ ...fromEnv(), concurrentRequests: 50, maxResponseTimeMs: 200 })
 * await runGate('post-deploy', [suite], ctx, { count: 3, intervalMs: 10_000 })
 * ```
 */
export function httpValidation(options: HttpValidationOptions = {}) {
  const { name = 'http-validation', ...rest } = options;
  // Validate everything now; the base URL may still come from the context.
  resolveValidation({ baseUrl: 'http://placeholder.invalid', ...rest });
  return {
    name,
    async verify(ctx: VerifyContext): Promise<VerifierResult> {
      return run(
        resolveValidation({
          ...rest,
          baseUrl: rest.baseUrl ?? ctx.endpoint,
          expectedVersion: rest.expectedVersion ?? ctx.version,
          signal: ctx.signal,
          logger: ctx.logger,
        }),
      );
    },
  } satisfies Verifier;
}

export type { ResponseHeaders, SecurityHeaderRule } from './headers.js';
export { owaspSecureHeaders } from './headers.js';
export type { LoadTestOptions, LoadTestResult } from './load.js';
export { loadTest } from './load.js';
export type { ValidationChecks, ValidationOptions } from './options.js';
export { fromEnv, validationDefaults } from './options.js';
