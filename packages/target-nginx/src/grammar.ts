import { ConfigInvalidError } from '@codegraph/release-core';
import { hasControl } from '@codegraph/release-core/kit';

// Every value that reaches nginx.conf passes one of these strict grammars first: nginx -t only
// catches what does not parse, and a value holding `;`, `}` or a newline parses as more config.

function fail(message: string): never {
  throw new ConfigInvalidError(`nginxTarget: ${message}`, { plugin: 'nginx' });
}

const show = (value: unknown) => {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

/** A target name: it is written into a config comment and log lines. */
const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Checks the target's `name`: 1-63 letters, digits, `.`, `_`, `-` (no newline, no config syntax). */
export function checkTargetName(value: unknown): string {
  if (typeof value !== 'string' || !namePattern.test(value)) {
    fail(`name ${show(value)} is not valid: use 1-63 letters, digits, '.', '_' or '-'`);
  }
  return value;
}

/** Characters a path written into nginx.conf (quoted) may hold. */
const pathPattern = /^\/[A-Za-z0-9._/ +@,=:~-]*$/;

/** Checks an absolute path that nginx.conf quotes: no quote, `$`, `;`, brace, backslash or control character. */
export function checkConfigPath(value: unknown, what: string): string {
  if (typeof value !== 'string' || !pathPattern.test(value) || value.length > 1024) {
    fail(
      `${what} ${show(value)} must be an absolute path of letters, digits, spaces and ._/+@,=:~- (no quotes, "$", ";", braces or control characters)`,
    );
  }
  return value;
}

export const ipv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const ipv6 = /^\[[0-9A-Fa-f:.]{2,45}\]$/;
const label = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Whether `host` is an IPv4 address, a bracketed IPv6 address or a DNS host name. */
export function isHost(host: string): boolean {
  if (ipv4.test(host) || ipv6.test(host)) return true;
  if (host.length > 253) return false;
  const labels = host.split('.');
  // A name of digits and dots only is a malformed IPv4 address, not a host name.
  return labels.every((l) => label.test(l)) && !/^[\d.]+$/.test(host);
}

/**
 * Checks an upstream address `host:port` (host: IPv4, `[IPv6]` or a DNS name; port 1-65535), the form
 * written into `server` lines and the pool map.
 */
export function checkAddress(value: unknown, what = 'upstream address'): string {
  const m = typeof value === 'string' ? /^(.+):(\d{1,5})$/.exec(value) : null;
  const port = m ? Number(m[2]) : 0;
  if (!m || !isHost(m[1]!) || port < 1 || port > 65_535) {
    fail(`${what} ${show(value)} is not host:port with a plain IPv4, [IPv6] or DNS host and a port 1-65535`);
  }
  return value as string;
}

/**
 * The `host:port` of a backend endpoint such as `http://127.0.0.1:41234`: only `http:` URLs with a port
 * and no credentials, path or query are accepted, since the backend is another plugin.
 */
export function addressOf(endpoint: unknown): string {
  let url: URL | undefined;
  try {
    url = typeof endpoint === 'string' && !hasControl(endpoint) ? new URL(endpoint) : undefined;
  } catch {
    url = undefined;
  }
  if (!url) fail(`backend endpoint ${show(endpoint)} must be a plain http://host:port URL`);
  if (
    url.protocol !== 'http:' ||
    url.port === '' ||
    url.username !== '' ||
    url.password !== '' ||
    !['', '/'].includes(url.pathname) ||
    url.search !== '' ||
    url.hash !== ''
  ) {
    fail(`backend endpoint ${show(endpoint)} must be a plain http://host:port URL`);
  }
  return checkAddress(url.host, 'backend endpoint');
}

/** A bare token of a directive, or a double-quoted string without quotes, backslashes or braces inside. */
const directivePattern = /^[a-z_][a-z0-9_]*(?:[ \t]+(?:[^\s;{}"'#\\]+|"[^"\\{}]*"))*;$/;

/**
 * Checks one raw `server` directive: a name, plain or double-quoted arguments, and a final `;`. Blocks,
 * several directives in one entry, comments and control characters are refused.
 */
export function checkDirective(value: unknown): string {
  if (
    typeof value !== 'string' ||
    value.length > 4096 ||
    hasControl(value.replaceAll('\t', ' ')) ||
    !directivePattern.test(value)
  ) {
    fail(
      `nginx.serverDirectives entry ${show(value)} must be one simple directive such as "client_max_body_size 10m;" (no blocks, no second directive, no comment)`,
    );
  }
  return value;
}

/** Checks a user name for the `user` directive. */
export function checkUser(value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(value)) {
    fail(`nginx.user ${show(value)} must be a user name`);
  }
  return value;
}
