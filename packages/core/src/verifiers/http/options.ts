import { ConfigInvalidError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { owaspSecureHeaders, type SecurityHeaderRule } from './headers.js';

/**
 * The checks of the validation suite; each can be switched off with `false`. `http2` and `auth` are
 * `'auto'` by default: HTTP/2 is checked when the base URL is `https:` or `h2c` is set, authentication
 * when an API key is given. `true` forces a check (HTTP/2 over plain `http:` without `h2c` then fails,
 * the with-key half of `auth` without a key is inconclusive). A suite with every check off is
 * `inconclusive`, never a pass.
 *
 * @example
 * ```ts
 * validateDeployment({ baseUrl, checks: { concurrency: false, http2: true } })
 * ```
 */
export interface ValidationChecks {
  /** `/health` answers 200 with a healthy JSON body and the expected version. @default true */
  health?: boolean;
  /** The protected endpoint answers 401/403 without the API key and 2xx with it. @default 'auto' */
  auth?: boolean | 'auto';
  /** HTTP/2 is negotiated (ALPN `h2` over TLS, or h2c with prior knowledge). @default 'auto' */
  http2?: boolean | 'auto';
  /** A GraphQL query executes without `errors`. @default true */
  graphql?: boolean;
  /** `/metrics` is served in Prometheus text format and holds the expected metric names. @default true */
  metrics?: boolean;
  /** p50/p95/p99 of `latencySamples` sequential requests are within `maxResponseTimeMs`. @default true */
  latency?: boolean;
  /** `loadRequests` requests with `concurrentRequests` in flight: no errors, throughput measured. @default true */
  concurrency?: boolean;
  /** Every rule of `securityHeaders` holds. @default true */
  securityHeaders?: boolean;
}

/**
 * Settings of the deployment validation suite: the seed's `scripts/deploy/validate.sh` variables
 * (`BASE_URL`, `TIMEOUT_SECS`, `CONCURRENT_REQUESTS`, `MAX_RESPONSE_TIME_MS`, `VERBOSE`, `API_KEY`; see
 * {@link fromEnv}) plus the endpoints and expectations. Options win over the environment.
 *
 * @example
 * ```ts
 * const options: ValidationOptions = {
 *   env: process.env, // BASE_URL, TIMEOUT_SECS, CONCURRENT_REQUESTS, MAX_RESPONSE_TIME_MS, VERBOSE, API_KEY
 *   expectedVersion: 'v1.2.3',
 *   authPath: '/stats/rocksdb',
 *   maxResponseTimeMs: 200,
 * }
 * ```
 */
export interface ValidationOptions {
  /** The service's base URL (`BASE_URL`). Required for `validateDeployment`; a verifier uses `ctx.endpoint`. */
  baseUrl?: string;
  /** Seconds the health check keeps retrying until the service answers healthy (`TIMEOUT_SECS`). @default 30 */
  timeoutSecs?: number;
  /** Milliseconds one request may take before it counts as failed. @default 10000 */
  requestTimeoutMs?: number;
  /** Requests in flight during the concurrency check (`CONCURRENT_REQUESTS`). @default 10 */
  concurrentRequests?: number;
  /** Requests sent in total during the concurrency check. @default 200 */
  loadRequests?: number;
  /** Lowest acceptable throughput of the concurrency check, requests per second. @default 0 (measured only) */
  minThroughputRps?: number;
  /** Highest acceptable p50, p95 and p99 response time in milliseconds (`MAX_RESPONSE_TIME_MS`). @default 1000 */
  maxResponseTimeMs?: number;
  /** Sequential requests sampled for the response-time percentiles. @default 20 */
  latencySamples?: number;
  /** Log every check at `info` instead of only the failures (`VERBOSE`). @default false */
  verbose?: boolean;
  /** Bearer API key (`API_KEY`), sent on every request except the anonymous probe; never logged. @default undefined */
  apiKey?: string;
  /** The version `/health` must report. A verifier defaults it to `ctx.version`. @default undefined (not checked) */
  expectedVersion?: string;
  /** @default '/health' */
  healthPath?: string;
  /** An endpoint that requires the API key. @default '/stats/rocksdb' */
  authPath?: string;
  /** @default '/graphql' */
  graphqlPath?: string;
  /** The GraphQL query that must execute without `errors`. @default '{ version }' */
  graphqlQuery?: string;
  /** @default '/metrics' */
  metricsPath?: string;
  /** Metric names `/metrics` must hold. @default ['http_requests_total', 'http_request_duration_seconds', 'cache_hit_ratio'] */
  expectedMetrics?: string[];
  /** The endpoint timed by the latency and concurrency checks. @default '/health' */
  loadPath?: string;
  /** The endpoint whose response headers are checked. @default '/health' */
  headersPath?: string;
  /** Security header rules. @default owaspSecureHeaders */
  securityHeaders?: readonly SecurityHeaderRule[];
  /** Check HTTP/2 over plain `http:` by h2c with prior knowledge. @default false */
  h2c?: boolean;
  /** Extra CA certificates (PEM) to trust, e.g. a staging certificate. @default undefined (system CAs) */
  ca?: string | Buffer;
  /** Switch checks off one by one. @default every check on, `auth`/`http2` 'auto' */
  checks?: ValidationChecks;
  /** Where check results are logged. @default undefined (no logging) */
  logger?: Logger;
  /** Cancels the suite. */
  signal?: AbortSignal;
  /**
   * Environment to read the script's variables from (see {@link fromEnv}); options win over it.
   * Pass `process.env` to behave like `validate.sh`. @default undefined (the environment is not read)
   */
  env?: Record<string, string | undefined>;
}

/** Options with defaults filled and validated. */
export interface ResolvedValidation
  extends Required<
    Omit<ValidationOptions, 'apiKey' | 'expectedVersion' | 'ca' | 'logger' | 'signal' | 'checks' | 'env'>
  > {
  url: URL;
  apiKey: string | undefined;
  expectedVersion: string | undefined;
  ca: string | Buffer | undefined;
  logger: Logger | undefined;
  signal: AbortSignal | undefined;
  checks: Record<keyof ValidationChecks, boolean>;
}

/**
 * The defaults {@link ValidationOptions} documents, in one place.
 *
 * @example
 * ```ts
 * console.log(`checking ${validationDefaults.expectedMetrics.join(', ')}`)
 * ```
 */
export const validationDefaults = Object.freeze({
  timeoutSecs: 30,
  requestTimeoutMs: 10_000,
  concurrentRequests: 10,
  loadRequests: 200,
  minThroughputRps: 0,
  maxResponseTimeMs: 1000,
  latencySamples: 20,
  verbose: false,
  healthPath: '/health',
  authPath: '/stats/rocksdb',
  graphqlPath: '/graphql',
  graphqlQuery: '{ version }',
  metricsPath: '/metrics',
  expectedMetrics: ['http_requests_total', 'http_request_duration_seconds', 'cache_hit_ratio'] as string[],
  loadPath: '/health',
  headersPath: '/health',
  h2c: false,
});

const invalid = (field: string, rule: string, shown: unknown) =>
  new ConfigInvalidError(`validation option ${field} must be ${rule}, got ${JSON.stringify(shown)}`, {
    details: { field },
  });

/** Fills defaults and validates; throws {@link ConfigInvalidError} (never showing the API key). */
export function resolveValidation(given: ValidationOptions): ResolvedValidation {
  const { env, ...own } = given;
  const options: ValidationOptions = { ...(env ? fromEnv(env) : {}), ...defined(own) };
  const o = { ...validationDefaults, ...options };
  if (typeof o.baseUrl !== 'string' || o.baseUrl === '') {
    throw new ConfigInvalidError('validation needs baseUrl (or BASE_URL), e.g. https://api.codegraph.com', {
      details: { field: 'baseUrl' },
    });
  }
  let url: URL;
  try {
    url = new URL(o.baseUrl);
  } catch {
    throw invalid('baseUrl', 'an absolute http(s) URL', o.baseUrl);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw invalid('baseUrl', 'an http: or https: URL', o.baseUrl);
  if (url.username || url.password)
    throw invalid('baseUrl', 'a URL without credentials (use apiKey)', url.origin);
  const positiveInt = ['concurrentRequests', 'loadRequests', 'latencySamples'] as const;
  for (const f of positiveInt)
    if (!Number.isInteger(o[f]) || o[f] < 1) throw invalid(f, 'an integer >= 1', o[f]);
  const positive = ['timeoutSecs', 'requestTimeoutMs', 'maxResponseTimeMs'] as const;
  for (const f of positive) if (!Number.isFinite(o[f]) || o[f] <= 0) throw invalid(f, 'a number > 0', o[f]);
  if (!Number.isFinite(o.minThroughputRps) || o.minThroughputRps < 0) {
    throw invalid('minThroughputRps', 'a number >= 0', o.minThroughputRps);
  }
  for (const f of [
    'healthPath',
    'authPath',
    'graphqlPath',
    'metricsPath',
    'loadPath',
    'headersPath',
  ] as const) {
    if (typeof o[f] !== 'string' || !o[f].startsWith('/')) throw invalid(f, 'a path starting with /', o[f]);
  }
  if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey.trim() === '')) {
    throw new ConfigInvalidError('validation option apiKey must be a non-empty string', {
      details: { field: 'apiKey' },
    });
  }
  if (
    !Array.isArray(o.expectedMetrics) ||
    o.expectedMetrics.some((m) => !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(m))
  ) {
    throw invalid('expectedMetrics', 'an array of Prometheus metric names', o.expectedMetrics);
  }
  const rules = o.securityHeaders ?? owaspSecureHeaders;
  const c = options.checks ?? {};
  for (const [k, v] of Object.entries(c)) {
    if (v !== undefined && typeof v !== 'boolean' && !(v === 'auto' && (k === 'auth' || k === 'http2'))) {
      throw invalid(`checks.${k}`, k === 'auth' || k === 'http2' ? "true, false or 'auto'" : 'a boolean', v);
    }
  }
  const on = (v: boolean | 'auto' | undefined) => v !== false;
  const checks = {
    health: on(c.health),
    graphql: on(c.graphql),
    metrics: on(c.metrics),
    latency: on(c.latency),
    concurrency: on(c.concurrency),
    securityHeaders: on(c.securityHeaders),
    auth: c.auth === undefined || c.auth === 'auto' ? options.apiKey !== undefined : c.auth,
    http2: c.http2 === undefined || c.http2 === 'auto' ? url.protocol === 'https:' || o.h2c : c.http2,
  };
  return {
    ...o,
    baseUrl: url.href.replace(/\/$/, ''),
    url,
    securityHeaders: rules,
    apiKey: options.apiKey,
    expectedVersion: options.expectedVersion,
    ca: options.ca,
    logger: options.logger,
    signal: options.signal,
    checks,
  };
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Reads the seed script's settings from environment variables: `BASE_URL`, `TIMEOUT_SECS`,
 * `CONCURRENT_REQUESTS`, `MAX_RESPONSE_TIME_MS`, `VERBOSE` (`true`/`1`/`yes`), `API_KEY` (or
 * `CODEGRAPH_API_KEY`). Unset variables are left out so options can be spread over the result.
 * A malformed number throws {@link ConfigInvalidError} naming the variable.
 *
 * @example
 * ```ts
 * const { verdict, checks } = await validateDeployment({ ...fromEnv(process.env), concurrentRequests: 50 })
 * ```
 */
export function fromEnv(env: Record<string, string | undefined> = process.env): ValidationOptions {
  const out: ValidationOptions = {};
  const num = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n)) {
      throw new ConfigInvalidError(`${name} must be a number, got ${JSON.stringify(raw)}`, {
        details: { variable: name },
      });
    }
    return n;
  };
  if (env.BASE_URL) out.baseUrl = env.BASE_URL;
  const timeoutSecs = num('TIMEOUT_SECS');
  if (timeoutSecs !== undefined) out.timeoutSecs = timeoutSecs;
  const concurrent = num('CONCURRENT_REQUESTS');
  if (concurrent !== undefined) out.concurrentRequests = concurrent;
  const maxMs = num('MAX_RESPONSE_TIME_MS');
  if (maxMs !== undefined) out.maxResponseTimeMs = maxMs;
  if (env.VERBOSE !== undefined && env.VERBOSE !== '') out.verbose = /^(1|true|yes|on)$/i.test(env.VERBOSE);
  const key = env.API_KEY || env.CODEGRAPH_API_KEY;
  if (key) out.apiKey = key;
  return out;
}
