import { type Dispatcher, request } from 'undici';
import type { Check } from '../../analysis/types.js';
import { sleep } from '../../analysis/wait.js';
import { ExpositionParseError, parseExposition } from './exposition.js';
import { probeHttp2 } from './h2.js';
import type { ResolvedValidation } from './options.js';

/** What every check needs: settings, an HTTP dispatcher, and a redactor for the API key. */
export interface Suite {
  o: ResolvedValidation;
  dispatcher: Dispatcher;
  redact: (text: string) => string;
}

export interface Answer {
  status: number;
  headers: Record<string, string | undefined>;
  body: string;
}

const AUTH = 'authorization';

/** Headers with the Bearer key when there is one (unless `anonymous`). */
export function headersFor(s: Suite, anonymous = false): Record<string, string> {
  return s.o.apiKey && !anonymous ? { [AUTH]: `Bearer ${s.o.apiKey}` } : {};
}

export async function call(
  s: Suite,
  path: string,
  init: { method?: 'GET' | 'POST'; body?: string; anonymous?: boolean; json?: boolean } = {},
): Promise<Answer> {
  const signal = s.o.signal
    ? AbortSignal.any([s.o.signal, AbortSignal.timeout(s.o.requestTimeoutMs)])
    : AbortSignal.timeout(s.o.requestTimeoutMs);
  const res = await request(`${s.o.baseUrl}${path}`, {
    method: init.method ?? 'GET',
    dispatcher: s.dispatcher,
    signal,
    headers: {
      ...headersFor(s, init.anonymous),
      ...(init.json ? { 'content-type': 'application/json' } : {}),
    },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const body = await res.body.text();
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(res.headers))
    headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return { status: res.statusCode, headers, body };
}

export const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
const short = (text: string, n = 160) => (text.length > n ? `${text.slice(0, n)}…` : text);
const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

/** `health.status`, `health.body`, `health.version`; retries until healthy within `timeoutSecs`. */
export async function healthChecks(s: Suite): Promise<Check[]> {
  const path = s.o.healthPath;
  const deadline = Date.now() + s.o.timeoutSecs * 1000;
  let answer: Answer | undefined;
  let lastError = '';
  for (;;) {
    try {
      answer = await call(s, path);
      if (answer.status === 200) break;
      lastError = `answered ${answer.status}`;
    } catch (err) {
      if (s.o.signal?.aborted) throw err;
      answer = undefined;
      lastError = message(err);
    }
    if (Date.now() + 500 > deadline) break;
    await sleep(500, s.o.signal, 'health check');
  }
  const query = `GET ${path}`;
  if (answer?.status !== 200) {
    return [
      {
        name: 'health.status',
        verdict: 'fail',
        observed: answer?.status ?? null,
        threshold: 200,
        query,
        reason: `not healthy within TIMEOUT_SECS=${s.o.timeoutSecs}: ${lastError}`,
      },
    ];
  }
  const checks: Check[] = [
    { name: 'health.status', verdict: 'pass', observed: 200, threshold: 200, query, reason: 'answered 200' },
  ];
  const body = parseJson(answer.body) as { status?: unknown; version?: unknown } | undefined;
  const status = typeof body?.status === 'string' ? body.status : null;
  const healthy = status !== null && /^(healthy|ok|pass|up)$/i.test(status);
  checks.push({
    name: 'health.body',
    verdict: healthy ? 'pass' : 'fail',
    observed: status ?? (body === undefined ? 'not JSON' : 'no status field'),
    threshold: 'JSON with status healthy|ok|pass|up',
    query,
    reason: healthy
      ? `status ${status}`
      : `body is ${body === undefined ? 'not JSON' : `status ${String(status)}`}: ${short(answer.body, 80)}`,
  });
  if (s.o.expectedVersion !== undefined) {
    const version = typeof body?.version === 'string' ? body.version : null;
    const ok = version === s.o.expectedVersion;
    checks.push({
      name: 'health.version',
      verdict: ok ? 'pass' : 'fail',
      observed: version,
      threshold: s.o.expectedVersion,
      query,
      reason: ok
        ? `runs ${version}`
        : `runs ${version ?? 'an unreported version'}, expected ${s.o.expectedVersion}`,
    });
  }
  return checks;
}

/** `auth.anonymous` (401/403 without the key) and `auth.api_key` (2xx with it). */
export async function authChecks(s: Suite): Promise<Check[]> {
  const path = s.o.authPath;
  const query = `GET ${path}`;
  const checks: Check[] = [];
  const anon = await call(s, path, { anonymous: true }).catch((err: unknown) => message(err));
  const anonOk = typeof anon !== 'string' && (anon.status === 401 || anon.status === 403);
  checks.push({
    name: 'auth.anonymous',
    verdict: anonOk ? 'pass' : 'fail',
    observed: typeof anon === 'string' ? null : anon.status,
    threshold: '401 or 403',
    query,
    reason: anonOk
      ? `refused without a key (${(anon as Answer).status})`
      : typeof anon === 'string'
        ? `request failed: ${anon}`
        : anon.status === 404
          ? `answered 404: no endpoint at authPath ${path}`
          : `answered ${anon.status} without an API key: the endpoint is not protected`,
  });
  if (!s.o.apiKey) {
    checks.push({
      name: 'auth.api_key',
      verdict: 'inconclusive',
      observed: null,
      threshold: '2xx',
      query,
      reason: 'no API key given (API_KEY)',
    });
    return checks;
  }
  const keyed = await call(s, path).catch((err: unknown) => message(err));
  const ok = typeof keyed !== 'string' && keyed.status >= 200 && keyed.status < 300;
  checks.push({
    name: 'auth.api_key',
    verdict: ok ? 'pass' : 'fail',
    observed: typeof keyed === 'string' ? null : keyed.status,
    threshold: '2xx',
    query,
    reason: ok
      ? `accepted the API key (${(keyed as Answer).status})`
      : typeof keyed === 'string'
        ? `request failed: ${keyed}`
        : `answered ${keyed.status} with the API key`,
  });
  return checks;
}

/** `http2`: ALPN h2 over TLS (or h2c), and a GET over HTTP/2 answers 2xx. */
export async function http2Check(s: Suite): Promise<Check[]> {
  const signal = s.o.signal
    ? AbortSignal.any([s.o.signal, AbortSignal.timeout(s.o.requestTimeoutMs)])
    : AbortSignal.timeout(s.o.requestTimeoutMs);
  const probe = await probeHttp2(s.o.url, s.o.healthPath, headersFor(s), {
    h2c: s.o.h2c,
    ca: s.o.ca,
    signal,
  });
  const expected = s.o.url.protocol === 'https:' ? 'h2' : 'h2c';
  const ok =
    probe.protocol === expected && probe.status !== undefined && probe.status >= 200 && probe.status < 300;
  return [
    {
      name: 'http2',
      verdict: ok ? 'pass' : 'fail',
      observed: probe.protocol,
      threshold: expected,
      query: `${expected} GET ${s.o.healthPath}`,
      reason: ok
        ? `negotiated ${probe.protocol}, answered ${probe.status}`
        : probe.error
          ? `no HTTP/2: ${probe.error}`
          : probe.protocol !== expected
            ? `server chose ${probe.protocol ?? 'no ALPN protocol'} instead of ${expected}`
            : `answered ${probe.status} over ${expected}`,
    },
  ];
}

/** `graphql`: the query answers 200 with `data` and no `errors`. */
export async function graphqlCheck(s: Suite): Promise<Check[]> {
  const query = `POST ${s.o.graphqlPath} ${s.o.graphqlQuery}`;
  const base = { name: 'graphql', threshold: 'data without errors', query };
  let answer: Answer;
  try {
    answer = await call(s, s.o.graphqlPath, {
      method: 'POST',
      json: true,
      body: JSON.stringify({ query: s.o.graphqlQuery }),
    });
  } catch (err) {
    return [{ ...base, verdict: 'fail', observed: null, reason: `request failed: ${message(err)}` }];
  }
  const body = parseJson(answer.body) as
    | { data?: unknown; errors?: Array<{ message?: unknown }> }
    | undefined;
  const errors = Array.isArray(body?.errors) ? body.errors : [];
  if (errors.length > 0) {
    const first = String(errors[0]?.message ?? 'unknown error');
    return [
      {
        ...base,
        verdict: 'fail',
        observed: `errors: ${short(first, 120)}`,
        reason: `${errors.length} GraphQL error(s), first: ${short(first, 120)}`,
      },
    ];
  }
  const ok = answer.status === 200 && body?.data !== undefined && body.data !== null;
  return [
    {
      ...base,
      verdict: ok ? 'pass' : 'fail',
      observed: ok ? 'data' : `status ${answer.status}`,
      reason: ok
        ? `executed: ${short(JSON.stringify(body.data), 80)}`
        : `answered ${answer.status} without data: ${short(answer.body, 80)}`,
    },
  ];
}

/** `metrics.parse` and one `metrics.<name>` per expected metric. */
export async function metricsChecks(s: Suite): Promise<Check[]> {
  const query = `GET ${s.o.metricsPath}`;
  let answer: Answer;
  try {
    answer = await call(s, s.o.metricsPath);
  } catch (err) {
    return [
      {
        name: 'metrics.parse',
        verdict: 'fail',
        observed: null,
        threshold: 'Prometheus text format',
        query,
        reason: `request failed: ${message(err)}`,
      },
    ];
  }
  if (answer.status !== 200) {
    return [
      {
        name: 'metrics.parse',
        verdict: 'fail',
        observed: answer.status,
        threshold: 'Prometheus text format',
        query,
        reason: `answered ${answer.status}`,
      },
    ];
  }
  let names: Set<string>;
  try {
    const parsed = parseExposition(answer.body);
    names = parsed.names;
  } catch (err) {
    const why = err instanceof ExpositionParseError ? err.message : message(err);
    return [
      {
        name: 'metrics.parse',
        verdict: 'fail',
        observed: 'unparsable',
        threshold: 'Prometheus text format',
        query,
        reason: `not Prometheus text: ${why}`,
      },
    ];
  }
  const checks: Check[] = [
    {
      name: 'metrics.parse',
      verdict: 'pass',
      observed: names.size,
      threshold: 'Prometheus text format',
      query,
      reason: `${names.size} metric names`,
    },
  ];
  for (const metric of s.o.expectedMetrics) {
    const has = names.has(metric);
    checks.push({
      name: `metrics.${metric}`,
      verdict: has ? 'pass' : 'fail',
      observed: has,
      threshold: true,
      query,
      reason: has ? 'exported' : `${metric} is missing`,
    });
  }
  return checks;
}

/** One `header.<rule>` check per security header rule, on one response. */
export async function headerChecks(s: Suite): Promise<Check[]> {
  const query = `GET ${s.o.headersPath}`;
  let answer: Answer;
  try {
    answer = await call(s, s.o.headersPath);
  } catch (err) {
    return [
      {
        name: 'header.response',
        verdict: 'fail',
        observed: null,
        threshold: 'a response',
        query,
        reason: `request failed: ${message(err)}`,
      },
    ];
  }
  return s.o.securityHeaders.map((rule) => {
    const ok = rule.test(answer.headers);
    const observed = rule.observed(answer.headers);
    return {
      name: `header.${rule.name}`,
      verdict: ok ? 'pass' : 'fail',
      observed,
      threshold: rule.expected,
      query,
      reason: ok
        ? `${observed ?? 'absent'}`
        : observed === null
          ? 'missing'
          : `${short(observed, 100)} is not ${rule.expected}`,
    } satisfies Check;
  });
}
