const MARK = '[redacted]';

/** Replaces every known secret in a text. Built once per destination from its secrets. */
export type Redact = (text: string) => string;

/**
 * Builds a redactor for the given secrets. Longer secrets are replaced first so that a secret that
 * contains another (a URL and its path) leaves no fragment behind. Encoded forms are covered too.
 */
export function redactor(secrets: ReadonlyArray<string | undefined>): Redact {
  const all = new Set<string>();
  for (const secret of secrets) {
    if (!secret || secret.length < 6) continue;
    all.add(secret);
    all.add(encodeURIComponent(secret));
    all.add(JSON.stringify(secret).slice(1, -1));
  }
  const sorted = [...all].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const secret of sorted) out = out.split(secret).join(MARK);
    return out;
  };
}

/**
 * The secret parts of a webhook URL: the whole URL, its path and query, and every path segment or
 * query value that looks like a token (webhook URLs carry their credential in the path or query).
 */
export function urlSecrets(url: URL): string[] {
  const parts = [url.href, url.pathname + url.search, url.pathname, url.search];
  for (const segment of url.pathname.split('/')) {
    // Plain lowercase words (`services`, `webhooks`, `invoke`) are route names, not credentials.
    if (segment.length >= 6 && !/^[a-z-]+$/.test(segment))
      parts.push(segment, decodeURIComponentSafe(segment));
  }
  for (const [, value] of url.searchParams) if (value.length >= 6) parts.push(value);
  if (url.password) parts.push(url.password);
  return parts;
}

/** A URL safe to show: scheme and host only, e.g. `https://hooks.slack.com/[redacted]`. */
export function describeUrl(url: URL): string {
  return `${url.protocol}//${url.host}/${MARK}`;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
