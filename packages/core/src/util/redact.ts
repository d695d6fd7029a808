/** What replaces a secret. */
export const REDACTED = '[REDACTED]';

const secretKey =
  /(secret|token|password|passwd|api[-_]?key|authorization|routing[-_]?key|webhook[-_]?url|signing[-_]?key|cookie|credential|private[-_]?key|access[-_]?key)/i;

/** A credential recognised by its shape, whatever key or text holds it. `keep` is the part left visible. */
interface Shape {
  pattern: RegExp;
  /** Builds the replacement from the match's groups; default: the whole match becomes {@link REDACTED}. */
  keep?: (...groups: string[]) => string;
}

// Credentials by shape: what a plugin, an upstream's error or an operator's `--reason` may carry
// without anyone declaring it a secret.
const shapes: Shape[] = [
  // PEM private keys, whole.
  { pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g },
  // `Authorization: <scheme> <value>` headers and bare `Bearer`/`Basic` values.
  {
    pattern:
      /\b((?:proxy-)?authorization"?\s*[:=]\s*"?)(?:(Bearer|Basic|Token|Digest|Negotiate)\s+)?[^\s",;]+/gi,
    keep: (head, scheme) => `${head}${scheme ? `${scheme} ` : ''}${REDACTED}`,
  },
  { pattern: /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{4,}/g, keep: (scheme) => `${scheme} ${REDACTED}` },
  // Credentials in URLs: `postgres://user:pass@host` keeps the scheme and host.
  { pattern: /\b([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+:[^/\s@]+@/gi, keep: (scheme) => `${scheme}${REDACTED}@` },
  // `password=`, `aws_secret_access_key = `, `"token": "..."` in query strings, connection strings, INI and JSON text
  // (not a dotted name such as the check `auth.api_key: accepted`).
  {
    pattern:
      /(?<![\w.-])((?:aws_)?secret(?:_access)?_key|secret|password|passwd|pwd|token|access_token|refresh_token|api[_-]?key|client_secret|routing_key|private_key|sig|signature)("?\s*[=:]\s*"?)(?!\[REDACTED\])[^\s&"',;}]{3,}/gi,
    keep: (key, sep) => `${key}${sep}${REDACTED}`,
  },
  // Slack tokens (bot, user, app, refresh, config).
  { pattern: /\bxox[abprse]-[A-Za-z0-9-]{8,}/g },
  { pattern: /\bxapp-[A-Za-z0-9-]{8,}/g },
  // AWS access key ids.
  { pattern: /\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b/g },
  // GitHub and npm tokens.
  { pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|npm_[A-Za-z0-9]{30,})\b/g },
  // JWTs: three base64url parts, the first a JSON header.
  { pattern: /\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*/g },
  // Webhook URLs whose path is the credential (Slack, Discord, Teams / Power Automate).
  { pattern: /https:\/\/hooks\.slack\.com\/[^\s"')]+/gi },
  { pattern: /https:\/\/(?:discord(?:app)?\.com)\/api\/webhooks\/[^\s"')]+/gi },
  {
    pattern:
      /https:\/\/[a-z0-9.-]+\.(?:webhook\.office\.com|logic\.azure\.com|environment\.api\.powerplatform\.com)[^\s"')]*/gi,
  },
  // PagerDuty routing and integration keys: 32 letters and digits, at least one digit.
  { pattern: /\b(?=[A-Za-z]{0,31}\d)[A-Za-z0-9]{32}\b/g },
];

/** Replaces secrets in strings and JSON-like values. */
export interface Redactor {
  /** Adds literal secret values to hide wherever they appear. */
  add(...secrets: ReadonlyArray<string | undefined>): void;
  /** Redacts one string. */
  string(value: string): string;
  /** Deep-copies a JSON-like value with secrets redacted (by key name, by pattern and by literal value). */
  value<T>(value: T): T;
}

// Shape redaction is a pure function of its input, and a release redacts the same strings (pool names,
// versions, step keys, messages) over and over: short strings are remembered, in a bounded map shared by
// every redactor in the process.
const shapeMemo = new Map<string, string>();
const memoEntries = 8_192;
const memoLength = 1_024;

/** The credentials recognised by their shape in `input`, replaced. */
function byShape(input: string): string {
  const remembered = input.length <= memoLength ? shapeMemo.get(input) : undefined;
  if (remembered !== undefined) return remembered;
  let out = input;
  for (const { pattern, keep } of shapes) {
    out = out.replace(pattern, (...args: unknown[]) => {
      if (!keep) return REDACTED;
      const groups = args.slice(1, -2).map((g) => (typeof g === 'string' ? g : ''));
      return keep(...groups);
    });
  }
  if (input.length <= memoLength) {
    if (shapeMemo.size >= memoEntries) shapeMemo.clear();
    shapeMemo.set(input, out);
  }
  return out;
}

/**
 * Makes a redactor for known secret values plus credentials recognised by their shape: bearer tokens
 * and `Authorization:` values, credentials in URLs (`postgres://user:pass@`), `password=` and
 * `aws_secret_access_key=` pairs, Slack tokens (`xoxb-...`), AWS access key ids (`AKIA...`), GitHub
 * and npm tokens, JWTs, PEM private keys, PagerDuty routing keys, Slack/Discord/Teams webhook URLs,
 * and values under keys named like secrets. A literal secret is also hidden URL-encoded and
 * JSON-escaped. The engine, the CLI, reports and `@codegraph/notify` all use this one redactor.
 *
 * @example
 * ```ts
 * const redactor = createRedactor([process.env.API_KEY])
 * redactor.string('GET /x failed: Authorization: Bearer abc.def') // 'GET /x failed: Authorization: Bearer [REDACTED]'
 * redactor.value({ password: 'hunter2', note: 'ok' })             // { password: '[REDACTED]', note: 'ok' }
 * ```
 */
export function createRedactor(secrets: ReadonlyArray<string | undefined> = []): Redactor {
  const literals = new Set<string>();
  // Longest first, so a secret that contains another is hidden whole.
  let ordered: string[] = [];
  const add = (...values: ReadonlyArray<string | undefined>) => {
    for (const v of values) {
      if (typeof v !== 'string' || v.length < 4) continue;
      // The forms a secret takes inside a URL or a JSON document.
      for (const form of [v, encodeURIComponent(v), JSON.stringify(v).slice(1, -1)]) literals.add(form);
    }
    ordered = [...literals].sort((a, b) => b.length - a.length);
  };
  add(...secrets);

  const string = (input: string): string => {
    let out = input;
    for (const s of ordered) {
      if (out.includes(s)) out = out.split(s).join(REDACTED);
    }
    return byShape(out);
  };

  const value = <T>(input: T): T => walk(input, new WeakSet()) as T;
  // `seen` holds the ancestors of the value being walked: a cycle is cut, a shared reference is not.
  const walk = (input: unknown, seen: WeakSet<object>): unknown => {
    if (typeof input === 'string') return string(input);
    if (input === null || typeof input !== 'object') return input;
    if (seen.has(input)) return '[Circular]';
    if (input instanceof Date) return input.toISOString();
    seen.add(input);
    try {
      if (Array.isArray(input)) return input.map((v) => walk(v, seen));
      if (input instanceof Error) {
        return walk({ name: input.name, message: input.message, ...(input as object) }, seen);
      }
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(input)) {
        out[k] =
          secretKey.test(k) && v !== undefined && v !== null && typeof v !== 'object'
            ? REDACTED
            : walk(v, seen);
      }
      return out;
    } finally {
      seen.delete(input);
    }
  };

  return { add, string, value };
}
