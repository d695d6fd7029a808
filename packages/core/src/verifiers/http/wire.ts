import net from 'node:net';
import tls from 'node:tls';

/**
 * A lean HTTP/1.1 keep-alive connection for the load step: it writes one pre-built GET and reads the
 * response (Content-Length, chunked, or until close), then calls back. It exists because the load
 * generator must not be the bottleneck on a shared machine: a promise-and-stream client costs several
 * times the CPU per request (see bench/validation.mjs). The other checks use undici.
 */
export interface WireTarget {
  url: URL;
  request: Buffer;
  ca: string | Buffer | undefined;
  timeoutMs: number;
}

const CRLF = Buffer.from('\r\n');
const CRLF2 = Buffer.from('\r\n\r\n');

/** Builds the request bytes once; header names and values may not carry CR/LF. */
export function buildRequest(url: URL, headers: Record<string, string>): Buffer {
  const lines = [
    `GET ${url.pathname}${url.search} HTTP/1.1`,
    `host: ${url.host}`,
    'user-agent: codegraph-release-validate',
    'accept: */*',
  ];
  for (const [k, v] of Object.entries(headers)) {
    if (/[\r\n:]/.test(k) || /[\r\n]/.test(v))
      throw new TypeError(`header ${JSON.stringify(k)} holds a line break`);
    lines.push(`${k}: ${v}`);
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

type Phase = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'trailers' | 'close';

/** One keep-alive connection; `next()` asks for another request, `done` reports each outcome. */
export class WireConnection {
  private socket: net.Socket | undefined;
  private buf: Buffer | undefined;
  private phase: Phase = 'head';
  private remaining = 0;
  private status = 0;
  private closeAfter = false;
  private busy = false;
  private started = 0;

  constructor(
    private readonly target: WireTarget,
    private readonly done: (status: number, ms: number, err: Error | undefined) => void,
  ) {}

  /** Sends one request, connecting first when needed. */
  send(): void {
    this.busy = true;
    this.started = performance.now();
    this.phase = 'head';
    this.buf = undefined;
    if (!this.socket || this.socket.destroyed) this.socket = this.connect();
    this.socket.write(this.target.request);
  }

  destroy(): void {
    this.busy = false;
    this.socket?.destroy();
    this.socket = undefined;
  }

  private connect(): net.Socket {
    const { url, ca, timeoutMs } = this.target;
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const socket =
      url.protocol === 'https:'
        ? tls.connect({
            host: url.hostname,
            port,
            ALPNProtocols: ['http/1.1'],
            ...(net.isIP(url.hostname) ? {} : { servername: url.hostname }),
            ...(ca ? { ca } : {}),
          })
        : net.connect(port, url.hostname);
    socket.setNoDelay(true);
    socket.setTimeout(timeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('timeout', () => this.fail(new Error(`no answer within ${timeoutMs} ms`), socket));
    socket.on('error', (err) => this.fail(err, socket));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      if (this.busy && this.phase === 'close') this.finish();
      else this.fail(new Error('connection closed before the response ended'), socket);
    });
    return socket;
  }

  private fail(err: Error, socket: net.Socket): void {
    socket.destroy();
    if (this.socket !== socket) return;
    this.socket = undefined;
    if (!this.busy) return;
    this.busy = false;
    this.done(0, performance.now() - this.started, err);
  }

  private finish(): void {
    this.busy = false;
    if (this.closeAfter) {
      this.socket?.destroy();
      this.socket = undefined;
    }
    this.done(this.status, performance.now() - this.started, undefined);
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    try {
      while (this.busy && this.buf && this.step()) {
        /* keep parsing */
      }
    } catch (err) {
      if (this.socket) this.fail(err as Error, this.socket);
    }
  }

  /** Advances the parser; returns false when it needs more bytes. */
  private step(): boolean {
    const buf = this.buf!;
    switch (this.phase) {
      case 'head': {
        const end = buf.indexOf(CRLF2);
        if (end < 0) return false;
        const head = buf.toString('latin1', 0, end);
        this.status = Number(head.slice(9, 12));
        if (!head.startsWith('HTTP/1.') || !(this.status >= 100))
          throw new Error(`not an HTTP/1.x response: ${head.slice(0, 40)}`);
        this.buf = buf.subarray(end + 4);
        if (this.status < 200) return true; // 1xx: the real response follows
        this.closeAfter = head.startsWith('HTTP/1.0') || /\r\nconnection:[ \t]*close/i.test(head);
        const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
        if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) this.phase = 'chunk-size';
        else if (this.status === 204 || this.status === 304) return this.complete(0);
        else if (length) return this.complete(Number(length[1]));
        else this.phase = 'close';
        return true;
      }
      case 'length':
        return this.take(this.remaining, () => this.finish());
      case 'chunk-size': {
        const eol = buf.indexOf(CRLF);
        if (eol < 0) return false;
        const size = Number.parseInt(buf.toString('latin1', 0, eol), 16);
        if (Number.isNaN(size)) throw new Error('bad chunk size');
        this.buf = buf.subarray(eol + 2);
        this.phase = size === 0 ? 'trailers' : 'chunk-data';
        this.remaining = size + 2;
        return true;
      }
      case 'chunk-data':
        return this.take(this.remaining, () => {
          this.phase = 'chunk-size';
        });
      case 'trailers': {
        if (buf.length >= 2 && buf[0] === 13 && buf[1] === 10) {
          this.buf = buf.subarray(2);
          this.finish();
          return true;
        }
        const end = buf.indexOf(CRLF2);
        if (end < 0) return false;
        this.buf = buf.subarray(end + 4);
        this.finish();
        return true;
      }
      case 'close':
        this.buf = undefined; // read until the server closes
        return false;
    }
  }

  private complete(length: number): boolean {
    this.phase = 'length';
    this.remaining = length;
    return true;
  }

  /** Consumes `n` bytes (or as many as there are), then runs `then`. */
  private take(n: number, then: () => void): boolean {
    const buf = this.buf!;
    if (buf.length < n) {
      this.remaining = n - buf.length;
      this.buf = undefined;
      return false;
    }
    this.buf = buf.length > n ? buf.subarray(n) : undefined;
    this.remaining = 0;
    then();
    return true;
  }
}
