import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One scripted answer; `hang` never answers. */
export type Reply = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

/** A request as the receiver saw it. */
export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: unknown;
  /** `performance.now()` when the full request had arrived. */
  at: number;
  /** Format violations found by the receiver's checker; empty when the payload is valid. */
  violations: string[];
}

/** A real HTTP receiver on 127.0.0.1:0 standing in for a SaaS endpoint. */
export interface Receiver {
  url: string;
  /** A random token in the URL path: the webhook's secret. */
  token: string;
  requests: Received[];
  /** Replies used in order, one per request; then `fallback`. */
  script: Reply[];
  fallback: Reply;
  close(): Promise<void>;
}

const open = new Set<Receiver>();

/**
 * Starts a receiver that checks each payload with `check` (returns violations). An invalid payload is
 * answered 400 as the real service would; a valid one gets the scripted reply.
 */
export async function startReceiver(options: {
  check: (json: unknown, req: { headers: IncomingHttpHeaders; body: string }) => string[];
  ok: Reply;
  pathPrefix?: string;
}): Promise<Receiver> {
  const token = `${randomBytes(12).toString('hex')}XyZ`;
  const hanging = new Set<ServerResponse>();
  const r = { token, requests: [], script: [], fallback: options.ok } as unknown as Receiver;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      const violations: string[] = [];
      if (req.method !== 'POST') violations.push(`method ${req.method} is not POST`);
      if (!String(req.headers['content-type']).startsWith('application/json')) {
        violations.push('content-type is not application/json');
      }
      try {
        json = JSON.parse(body);
        violations.push(...options.check(json, { headers: req.headers, body }));
      } catch (err) {
        violations.push(`body is not JSON: ${(err as Error).message}`);
      }
      r.requests.push({
        path: req.url ?? '',
        headers: req.headers,
        body,
        json,
        at: performance.now(),
        violations,
      });
      const reply =
        violations.length > 0
          ? { status: 400, body: violations.join('; ') }
          : (r.script.shift() ?? r.fallback);
      if (reply === 'hang') {
        hanging.add(res);
        return;
      }
      res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers }).end(reply.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  r.url = `http://127.0.0.1:${port}${options.pathPrefix ?? '/hooks'}/${token}`;
  r.close = () =>
    new Promise<void>((resolve) => {
      open.delete(r);
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  open.add(r);
  return r;
}

/** Closes every receiver still open: call from afterEach so a failing test leaves no server behind. */
export async function closeReceivers(): Promise<void> {
  await Promise.all([...open].map((r) => r.close()));
}

/** Polls until `check()` holds, failing after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs = 5000, what = 'the condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A logger that keeps every line for secret searches. */
export function captureLogs() {
  const lines: string[] = [];
  const keep = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`);
  };
  return {
    lines,
    logger: { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') },
  };
}

/** Everything an error exposes (message, stack, JSON form, causes) as one text. */
export function exposed(err: unknown, depth = 0): string {
  if (depth > 6 || err === undefined || err === null) return '';
  if (!(err instanceof Error)) return String(err);
  let json = '';
  try {
    json = JSON.stringify(err);
  } catch {
    json = '';
  }
  const own = JSON.stringify(Object.fromEntries(Object.entries(err)));
  return [err.message, err.stack ?? '', json, own, exposed(err.cause, depth + 1)].join('\n');
}

/** Runs `fn` and returns what it threw (failing when it did not throw). */
export async function thrownBy(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}
