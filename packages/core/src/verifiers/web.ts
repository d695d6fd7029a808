import { request } from 'undici';
import type { Verifier, VerifierResult, VerifyContext } from '../analysis/types.js';
import { ConfigInvalidError, VerifierError } from '../errors.js';
import { fillTemplate } from './prometheus/template.js';
import { redactor } from './utils/redact.js';
import { resultOf, thresholdCheck } from './utils/verdict.js';

/**
 * Options of {@link webMetric}.
 *
 * @example
 * ```ts
 * webMetric({ name: 'queue', url: 'http://ops.internal/stats?pool={{pool}}', select: '$.queues[0].depth', threshold: { max: 100 } })
 * ```
 */
export interface WebMetricOptions {
  /** The verifier's (and check's) name. */
  name: string;
  /** An http(s) URL; `{{pool}}`, `{{version}}` and `{{environment}}` are filled (URL-encoded) per pool. */
  url: string;
  /**
   * Where the number is in the JSON answer: `$` then `.key`, `["key"]` or `[index]` steps, e.g.
   * `$.data.result[0].value`. A number, or a string holding a decimal number, is accepted; anything
   * else is `inconclusive`, never a pass.
   */
  select: string;
  /** The condition: bounds the number must stay within (inclusive). */
  threshold: { min?: number; max?: number };
  /** Request headers (e.g. `authorization`); values never appear in checks or errors. @default {} */
  headers?: Record<string, string>;
  /** Milliseconds the request may take. @default 10000 */
  timeoutMs?: number;
  /** Largest answer read, in bytes; a bigger one is an error. @default 1048576 */
  maxBytes?: number;
}

/** The defaults {@link WebMetricOptions} documents. */
export const webMetricDefaults = Object.freeze({ timeoutMs: 10_000, maxBytes: 1024 * 1024 });

type Step = string | number;

/** Parses a JSONPath-like selector (`$.a.b[0]["c d"]`) into steps; throws `ConfigInvalidError`. */
export function parseSelector(select: string): Step[] {
  const bad = () =>
    new ConfigInvalidError(
      `webMetric: selector ${JSON.stringify(select)} must look like $.data.items[0].value`,
    );
  if (typeof select !== 'string' || !select.startsWith('$')) throw bad();
  const steps: Step[] = [];
  const re = /\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]/y;
  re.lastIndex = 1;
  while (re.lastIndex < select.length) {
    const at = re.lastIndex;
    const m = re.exec(select);
    if (!m || m.index !== at) throw bad();
    steps.push(m[1] ?? (m[2] !== undefined ? Number(m[2]) : JSON.parse(`"${m[3]}"`)));
  }
  return steps;
}

function pick(value: unknown, steps: Step[]): unknown {
  let v = value;
  for (const s of steps) {
    if (typeof s === 'number') v = Array.isArray(v) ? v[s] : undefined;
    else
      v =
        v !== null && typeof v === 'object' && Object.hasOwn(v, s)
          ? (v as Record<string, unknown>)[s]
          : undefined;
    if (v === undefined) return undefined;
  }
  return v;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/** A finite number, or a string that is exactly a decimal number; anything else is `null`. */
function numberOf(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && DECIMAL.test(v.trim()) && v.trim() === v) return Number(v);
  return null;
}

/**
 * A metric from any HTTP JSON endpoint (what Argo Rollouts' `web` provider does), with no SaaS: GET
 * `url` (per pool when it uses `{{pool}}`), take the number at `select`, and judge it against
 * `threshold`. A missing value, a non-number, an empty string or `NaN` is `inconclusive`, never a pass;
 * an unreachable endpoint, a timeout, a non-2xx answer or a body that is not JSON is a retryable
 * `VerifierError` (the gate counts an error measurement). Options are checked when it is made.
 *
 * @example
 * ```ts
 * const backlog = webMetric({ name: 'backlog', url: 'http://127.0.0.1:9000/stats', select: '$.backlog', threshold: { max: 50 } })
 * await runGate('canary-10', [backlog], ctx, { count: 5, intervalMs: 10_000 })
 * ```
 */
export function webMetric(options: WebMetricOptions) {
  const o = { ...webMetricDefaults, headers: {}, ...options };
  const bad = (why: string) => new ConfigInvalidError(`webMetric ${String(o.name)}: ${why}`);
  if (typeof o.name !== 'string' || !/^[\w.:-]+$/.test(o.name)) throw bad('name must be a word');
  const probe = fillTemplate(o.url ?? '', { pool: 'p', version: 'v', environment: 'e' });
  let parsed: URL;
  try {
    parsed = new URL(probe);
  } catch {
    throw bad(`url must be an absolute http(s) URL, got ${JSON.stringify(o.url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw bad('url must be http: or https:');
  const steps = parseSelector(o.select);
  const t = o.threshold ?? {};
  const num = (v: unknown) => v === undefined || (typeof v === 'number' && Number.isFinite(v));
  if ((t.min === undefined && t.max === undefined) || !num(t.min) || !num(t.max))
    throw bad('threshold needs a finite min and/or max');
  if (t.min !== undefined && t.max !== undefined && t.min > t.max) throw bad('threshold min > max');
  if (!(o.timeoutMs > 0) || !(o.maxBytes > 0)) throw bad('timeoutMs and maxBytes must be > 0');
  const redact = redactor([...Object.values(o.headers), parsed.password || undefined]);
  const perPool = /\{\{\s*pool\s*\}\}/.test(o.url);

  async function fetchOne(url: string, ctx: VerifyContext): Promise<unknown> {
    const timeout = AbortSignal.timeout(o.timeoutMs);
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, timeout]) : timeout;
    let status: number;
    let text = '';
    try {
      const res = await request(url, { method: 'GET', headers: o.headers, signal });
      status = res.statusCode;
      for await (const chunk of res.body) {
        text += chunk.toString();
        if (text.length > o.maxBytes) {
          res.body.destroy();
          throw new VerifierError(`webMetric ${o.name}: answer larger than ${o.maxBytes} bytes`, {
            retryable: false,
          });
        }
      }
    } catch (err) {
      if (err instanceof VerifierError || ctx.signal?.aborted) throw err;
      const why = timeout.aborted ? `no answer within ${o.timeoutMs} ms` : (err as Error).message;
      throw new VerifierError(`webMetric ${o.name}: ${redact(url)} is unreachable: ${redact(why)}`, {
        retryable: true,
      });
    }
    if (status < 200 || status > 299)
      throw new VerifierError(`webMetric ${o.name}: ${redact(url)} answered ${status}`, {
        retryable: status >= 500,
      });
    try {
      return JSON.parse(text);
    } catch {
      throw new VerifierError(`webMetric ${o.name}: ${redact(url)} answered a body that is not JSON`, {
        retryable: true,
      });
    }
  }

  return {
    name: o.name,
    async verify(ctx: VerifyContext): Promise<VerifierResult> {
      const pools = perPool ? ctx.pools : ctx.pools.slice(0, 1);
      const targets = (pools.length > 0 ? pools : [undefined]).map((p) => ({
        pool: p?.name,
        url: o.url.replace(/\{\{\s*(pool|version|environment)\s*\}\}/g, (_, k: string) =>
          encodeURIComponent(
            k === 'pool' ? (p?.name ?? '') : k === 'version' ? (p?.version ?? ctx.version) : ctx.environment,
          ),
        ),
      }));
      const checks = await Promise.all(
        targets.map(async ({ pool, url }) => {
          const value = numberOf(pick(await fetchOne(url, ctx), steps));
          const check = thresholdCheck(perPool && pool ? `${o.name}[${pool}]` : o.name, value, t, {
            query: `GET ${redact(url)} ${o.select}`,
          });
          return value === null
            ? { ...check, reason: `no number at ${o.select} (missing, empty, NaN or not a number)` }
            : { ...check, ...(pool ? { pool } : {}) };
        }),
      );
      return resultOf(checks);
    },
  } satisfies Verifier;
}
