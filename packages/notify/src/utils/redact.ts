import { REDACTED } from '@codegraph/release-core/kit';

/** Hides secrets in a text: core's one redactor (declared secrets plus credentials by shape). */
export type Redact = (text: string) => string;

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

/** A URL safe to show: scheme and host only, e.g. `https://hooks.slack.com/[REDACTED]`. */
export function describeUrl(url: URL): string {
  return `${url.protocol}//${url.host}/${REDACTED}`;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
