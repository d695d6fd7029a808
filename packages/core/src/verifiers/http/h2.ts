import http2 from 'node:http2';
import tls from 'node:tls';

/** What an HTTP/2 probe saw. */
export interface H2Probe {
  /** `h2`, `h2c`, the protocol negotiated instead (`http/1.1`), or `null` when nothing was. */
  protocol: string | null;
  /** Status of a GET over HTTP/2 when the protocol was h2/h2c. */
  status?: number;
  error?: string;
}

/** Which protocol a TLS server picks when offered `h2` and `http/1.1` by ALPN. */
function negotiate(url: URL, ca: string | Buffer | undefined, signal: AbortSignal): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: url.hostname,
      port: Number(url.port || 443),
      servername: url.hostname === '127.0.0.1' || url.hostname === '::1' ? undefined : url.hostname,
      ALPNProtocols: ['h2', 'http/1.1'],
      ...(ca ? { ca } : {}),
    });
    const onAbort = () => socket.destroy(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('secureConnect', () => {
      const p = socket.alpnProtocol;
      signal.removeEventListener('abort', onAbort);
      socket.end();
      resolve(typeof p === 'string' ? p : null);
    });
    socket.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(err);
    });
  });
}

/** GET `path` over an HTTP/2 session (TLS+ALPN for `https:`, prior-knowledge h2c for `http:`). */
function h2Get(
  url: URL,
  path: string,
  headers: Record<string, string>,
  ca: string | Buffer | undefined,
  signal: AbortSignal,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url.origin, ca ? { ca } : {});
    const done = (err: Error | null, status?: number) => {
      signal.removeEventListener('abort', onAbort);
      session.close();
      session.destroy();
      if (err) reject(err);
      else resolve(status!);
    };
    const onAbort = () => done(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    session.once('error', (err) => done(err));
    const req = session.request({ ':method': 'GET', ':path': path, ...headers });
    req.once('response', (h) => {
      req.resume();
      req.once('end', () => done(null, Number(h[':status'])));
    });
    req.once('error', (err) => done(err));
    req.end();
  });
}

/**
 * Probes HTTP/2 the way a client would: ALPN over TLS for `https:` (Node's `fetch` never negotiates
 * h2, so this uses `node:http2`), or h2c with prior knowledge for `http:` when `h2c` is set.
 */
export async function probeHttp2(
  url: URL,
  path: string,
  headers: Record<string, string>,
  options: { h2c: boolean; ca: string | Buffer | undefined; signal: AbortSignal },
): Promise<H2Probe> {
  try {
    if (url.protocol === 'https:') {
      const protocol = await negotiate(url, options.ca, options.signal);
      if (protocol !== 'h2') return { protocol };
      return { protocol, status: await h2Get(url, path, headers, options.ca, options.signal) };
    }
    if (!options.h2c) return { protocol: null, error: 'HTTP/2 needs https: (ALPN) or h2c: true over http:' };
    return { protocol: 'h2c', status: await h2Get(url, path, headers, undefined, options.signal) };
  } catch (err) {
    return { protocol: null, error: err instanceof Error ? err.message : String(err) };
  }
}
