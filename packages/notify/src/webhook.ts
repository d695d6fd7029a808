import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { ConfigInvalidError, type Notifier, type ReleaseEvent } from '@codegraph/release-core';
import type { Notice } from './templates.js';
import { asNotifier, type DestinationOptions, destination, parseWebhookUrl } from './utils/destination.js';
import { describeUrl, urlSecrets } from './utils/redact.js';

/**
 * The header that carries the signature: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
 *
 * @example
 * ```ts
 * const header = req.headers[signatureHeader] // 't=1767000000,v1=5f2b…'
 * ```
 */
export const signatureHeader = 'x-codegraph-signature';

/**
 * Options of {@link webhook}.
 *
 * @example
 * ```ts
 * const options: WebhookOptions = { url: 'https://ops.example.com/hooks/release', secret: process.env.RELEASE_HOOK_SECRET! }
 * ```
 */
export interface WebhookOptions extends DestinationOptions {
  /** Where to POST. Its path and query are treated as secrets. */
  url: string;
  /** The HMAC-SHA256 signing secret shared with the receiver; at least 16 characters. */
  secret: string;
  /** Extra request headers (e.g. an API key; their values are redacted too). @default {} */
  headers?: Record<string, string>;
}

/**
 * The JSON body a {@link webhook} POSTs.
 *
 * @example
 * ```ts
 * const payload = JSON.parse(rawBody) as WebhookPayload
 * if (payload.notice.kind === 'incident.opened') openTicket(payload.notice.title)
 * ```
 */
export interface WebhookPayload {
  /** Unique per notice; the same on every retry, so a receiver can drop duplicates. */
  id: string;
  type: ReleaseEvent['type'];
  notice: Notice;
  event: ReleaseEvent;
}

/**
 * POSTs each notice and its event as JSON to any HTTP endpoint, signed with HMAC-SHA256 in the
 * `X-CodeGraph-Signature` header (fresh timestamp on every attempt), with `X-CodeGraph-Delivery` (an id
 * stable across retries) and `X-CodeGraph-Event`. Receivers check it with {@link verifyWebhookSignature}
 * or the recipe in the README.
 *
 * @example
 * ```ts
 * import { webhook } from '@codegraph/notify'
 * const notifier = webhook({ url: 'https://ops.example.com/hooks/release', secret: process.env.RELEASE_HOOK_SECRET! })
 * ```
 */
export function webhook(options: WebhookOptions): Notifier {
  const url = parseWebhookUrl('webhook', 'url', options.url);
  const { secret } = options;
  if (typeof secret !== 'string' || secret.length < 16) {
    throw new ConfigInvalidError(
      'webhook: secret must be a string of at least 16 characters (value not shown)',
      {
        plugin: 'webhook',
      },
    );
  }
  const extra = options.headers ?? {};
  const d = destination({
    system: 'webhook',
    options,
    url,
    target: describeUrl(url),
    secrets: [secret, ...urlSecrets(url), ...Object.values(extra)],
    defaults: { minIntervalMs: 0 },
    async deliver(notice, event, send) {
      const payload: WebhookPayload = { id: randomUUID(), type: event.type, notice, event };
      const body = JSON.stringify(payload);
      await send({
        body,
        headers: () => ({
          ...extra,
          'x-codegraph-delivery': payload.id,
          'x-codegraph-event': event.type,
          [signatureHeader]: signWebhook(secret, body),
        }),
      });
    },
  });
  return asNotifier(d);
}

/**
 * The signature header value for a body: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
 *
 * @example
 * ```ts
 * const header = signWebhook(secret, JSON.stringify(payload))
 * ```
 */
export function signWebhook(
  secret: string,
  body: string,
  unixSeconds = Math.floor(Date.now() / 1000),
): string {
  const hex = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${hex}`;
}

/**
 * Options of {@link verifyWebhookSignature}.
 *
 * @example
 * ```ts
 * const options: VerifyWebhookOptions = { secret, header: req.headers['x-codegraph-signature'] as string, body: rawBody }
 * ```
 */
export interface VerifyWebhookOptions {
  /** The shared signing secret; empty or missing throws `CG_CONFIG_INVALID`. */
  secret: string;
  /** The `X-CodeGraph-Signature` header as received. */
  header: string | undefined;
  /** The raw request body, exactly as received (before any JSON parsing); bytes are hashed as they are. */
  body: string | Uint8Array;
  /** Largest accepted age (and clock skew) of the timestamp, against replays. @default 300 */
  toleranceSeconds?: number;
  /** The receiver's clock in unix seconds. @default now */
  now?: number;
}

/**
 * Checks a received webhook: the HMAC over `"<t>.<body>"` matches one of the `v1` values (compared in
 * constant time) and `t` is within the tolerance. Returns `false` on anything else; throws
 * `CG_CONFIG_INVALID` when `secret` is empty or missing (every signature would be forgeable).
 *
 * @example
 * ```ts
 * const ok = verifyWebhookSignature({ secret, header: req.headers['x-codegraph-signature'], body: rawBody })
 * if (!ok) return res.writeHead(401).end()
 * ```
 */
export function verifyWebhookSignature(options: VerifyWebhookOptions): boolean {
  const { header, secret } = options;
  // An empty key makes every signature forgeable: a receiver misconfigured so must fail loudly, not accept.
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new ConfigInvalidError(
      'verifyWebhookSignature: secret must be the non-empty signing secret shared with the sender (value not shown)',
      { plugin: 'webhook' },
    );
  }
  if (typeof header !== 'string' || header === '') return false;
  let t: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const [k, v] = part.trim().split('=', 2);
    if (k === 't' && v && /^\d+$/.test(v)) t = Number(v);
    if (k === 'v1' && v) signatures.push(v);
  }
  if (t === undefined || signatures.length === 0) return false;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (options.toleranceSeconds ?? 300)) return false;
  // The exact bytes received: decoding a byte body as UTF-8 first would map invalid sequences to U+FFFD,
  // so different bodies would share one signature.
  const body = typeof options.body === 'string' ? Buffer.from(options.body, 'utf8') : options.body;
  if (!(body instanceof Uint8Array)) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex'));
  return signatures.some((s) => {
    const got = Buffer.from(s);
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}
