/** What replaces a secret. */
export const REDACTED = '[REDACTED]';

const secretKey =
  /(secret|token|password|passwd|api[-_]?key|authorization|routing[-_]?key|webhook[-_]?url|signing[-_]?key|cookie)/i;

// Values that are secrets whatever key holds them: bearer tokens, URLs with credentials, known webhook hosts.
const secretPatterns: RegExp[] = [
  /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{4,}/g,
  /\b([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+:[^/\s@]+@/gi,
  /https:\/\/hooks\.slack\.com\/[^\s"')]+/gi,
  /https:\/\/(?:discord(?:app)?\.com)\/api\/webhooks\/[^\s"')]+/gi,
  /https:\/\/[a-z0-9.-]+\.(?:webhook\.office\.com|logic\.azure\.com|environment\.api\.powerplatform\.com)[^\s"')]*/gi,
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

/**
 * Makes a redactor for known secret values plus the patterns every log line should hide
 * (bearer tokens, credentials in URLs, Slack/Discord/Teams webhook URLs, keys named like secrets).
 */
export function createRedactor(secrets: ReadonlyArray<string | undefined> = []): Redactor {
  const literals = new Set<string>();
  const add = (...values: ReadonlyArray<string | undefined>) => {
    for (const v of values) if (v && v.length >= 4) literals.add(v);
  };
  add(...secrets);

  const string = (input: string): string => {
    let out = input;
    // Longest first, so a secret that contains another is hidden whole.
    for (const s of [...literals].sort((a, b) => b.length - a.length)) {
      if (out.includes(s)) out = out.split(s).join(REDACTED);
    }
    for (const pattern of secretPatterns) {
      out = out.replace(pattern, (_match, p1: string | undefined) =>
        p1 && /:\/\/$/.test(p1)
          ? `${p1}${REDACTED}@`
          : p1 && /^(Bearer|Basic)$/i.test(p1)
            ? `${p1} ${REDACTED}`
            : REDACTED,
      );
    }
    return out;
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
