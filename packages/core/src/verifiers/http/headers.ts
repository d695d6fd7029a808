/**
 * Response headers by lower-case name (a repeated header joined with `, `).
 *
 * @example
 * ```ts
 * const headers: ResponseHeaders = { 'x-content-type-options': 'nosniff' }
 * ```
 */
export type ResponseHeaders = Readonly<Record<string, string | undefined>>;

/**
 * One security-header rule: what a response must (or must not) carry. `test` returns `true` when the
 * headers comply; the check reports `observed(headers)` against `expected`.
 *
 * @example
 * ```ts
 * const cacheControl = {
 *   name: 'cache-control',
 *   expected: 'no-store',
 *   observed: (h) => h['cache-control'] ?? null,
 *   test: (h) => /\bno-store\b/i.test(h['cache-control'] ?? ''),
 * } satisfies SecurityHeaderRule
 * ```
 */
export interface SecurityHeaderRule {
  /** Check name suffix: the check is called `header.<name>`. */
  name: string;
  /** The expected value, in words. */
  expected: string;
  /** What the response carries for this rule (`null` when absent). */
  observed(headers: ResponseHeaders): string | null;
  /** Whether the headers comply. */
  test(headers: ResponseHeaders): boolean;
}

const get = (name: string) => (h: ResponseHeaders) => h[name] ?? null;
const directive = (csp: string | undefined, name: string): string | undefined =>
  csp
    ?.split(';')
    .map((d) => d.trim())
    .find((d) => d.toLowerCase().startsWith(`${name} `) || d.toLowerCase() === name);

/** Minimum HSTS `max-age` (one year), as the OWASP Secure Headers Project recommends. */
export const HSTS_MIN_MAX_AGE = 31_536_000;

/**
 * The security headers the validation suite requires by default, after the OWASP Secure Headers
 * Project's recommendations (headers to add and headers to remove):
 *
 * | rule | requirement |
 * |---|---|
 * | `strict-transport-security` | present, `max-age` >= 31536000 (one year) |
 * | `x-content-type-options` | `nosniff` |
 * | `frame-ancestors` | `X-Frame-Options: DENY` or `SAMEORIGIN`, or a CSP `frame-ancestors` directive |
 * | `content-security-policy` | present, not empty |
 * | `referrer-policy` | `no-referrer`, `same-origin`, `strict-origin` or `strict-origin-when-cross-origin` |
 * | `permissions-policy` | present, not empty |
 * | `cross-origin-opener-policy` | `same-origin` (or `same-origin-allow-popups`) |
 * | `cross-origin-resource-policy` | `same-origin` or `same-site` |
 * | `x-permitted-cross-domain-policies` | absent or `none` |
 * | `x-xss-protection` | absent or `0` (the XSS auditor is deprecated and harmful) |
 * | `x-powered-by` | absent (discloses the stack) |
 * | `server` | absent or without a version number |
 *
 * `Cross-Origin-Embedder-Policy` and `Cache-Control` are left out: they depend on the resource (an
 * API endpoint that serves no embeddable documents; cacheable public data). Add rules for them with
 * your own {@link SecurityHeaderRule}s.
 *
 * @example
 * ```ts
 * validateDeployment({ baseUrl, securityHeaders: [...owaspSecureHeaders.filter((r) => r.name !== 'server'), cacheControl] })
 * ```
 */
export const owaspSecureHeaders: readonly SecurityHeaderRule[] = Object.freeze([
  {
    name: 'strict-transport-security',
    expected: `max-age >= ${HSTS_MIN_MAX_AGE}`,
    observed: get('strict-transport-security'),
    test: (h) => {
      const m = /(?:^|;)\s*max-age\s*=\s*"?(\d+)"?/i.exec(h['strict-transport-security'] ?? '');
      return m !== null && Number(m[1]) >= HSTS_MIN_MAX_AGE;
    },
  },
  {
    name: 'x-content-type-options',
    expected: 'nosniff',
    observed: get('x-content-type-options'),
    test: (h) => h['x-content-type-options']?.trim().toLowerCase() === 'nosniff',
  },
  {
    name: 'frame-ancestors',
    expected: 'X-Frame-Options DENY|SAMEORIGIN or CSP frame-ancestors',
    observed: (h) => {
      const parts = [
        h['x-frame-options'] ? `X-Frame-Options: ${h['x-frame-options']}` : undefined,
        directive(h['content-security-policy'], 'frame-ancestors'),
      ].filter(Boolean);
      return parts.length ? parts.join('; ') : null;
    },
    test: (h) =>
      /^(deny|sameorigin)$/i.test(h['x-frame-options']?.trim() ?? '') ||
      (directive(h['content-security-policy'], 'frame-ancestors')?.length ?? 0) > 'frame-ancestors'.length,
  },
  {
    name: 'content-security-policy',
    expected: 'a policy',
    observed: get('content-security-policy'),
    test: (h) => (h['content-security-policy']?.trim().length ?? 0) > 0,
  },
  {
    name: 'referrer-policy',
    expected: 'no-referrer|same-origin|strict-origin|strict-origin-when-cross-origin',
    observed: get('referrer-policy'),
    // Several comma-separated values: browsers apply the last one they understand.
    test: (h) =>
      /^(no-referrer|same-origin|strict-origin|strict-origin-when-cross-origin)$/i.test(
        h['referrer-policy']?.split(',').pop()?.trim() ?? '',
      ),
  },
  {
    name: 'permissions-policy',
    expected: 'a policy',
    observed: get('permissions-policy'),
    test: (h) => (h['permissions-policy']?.trim().length ?? 0) > 0,
  },
  {
    name: 'cross-origin-opener-policy',
    expected: 'same-origin',
    observed: get('cross-origin-opener-policy'),
    test: (h) => /^same-origin(-allow-popups)?$/i.test(h['cross-origin-opener-policy']?.trim() ?? ''),
  },
  {
    name: 'cross-origin-resource-policy',
    expected: 'same-origin|same-site',
    observed: get('cross-origin-resource-policy'),
    test: (h) => /^same-(origin|site)$/i.test(h['cross-origin-resource-policy']?.trim() ?? ''),
  },
  {
    name: 'x-permitted-cross-domain-policies',
    expected: 'absent or none',
    observed: get('x-permitted-cross-domain-policies'),
    test: (h) => /^(none)?$/i.test(h['x-permitted-cross-domain-policies']?.trim() ?? ''),
  },
  {
    name: 'x-xss-protection',
    expected: 'absent or 0',
    observed: get('x-xss-protection'),
    test: (h) => /^(0)?$/.test(h['x-xss-protection']?.trim() ?? ''),
  },
  {
    name: 'x-powered-by',
    expected: 'absent',
    observed: get('x-powered-by'),
    test: (h) => h['x-powered-by'] === undefined,
  },
  {
    name: 'server',
    expected: 'absent or without a version',
    observed: get('server'),
    test: (h) => !/\d+\.\d+/.test(h.server ?? ''),
  },
] satisfies SecurityHeaderRule[]);
