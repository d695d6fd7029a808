import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * The Prometheus text exposition of one or more registries (e.g. an engine's `engine.registry` and the
 * platform's own), concatenated in order, with the content type to send it under.
 *
 * @example
 * ```ts
 * const { contentType, body } = await metricsText(engine.registry!)
 * reply.header('content-type', contentType).send(body)
 * ```
 */
export async function metricsText(...registries: Registry[]): Promise<{ contentType: string; body: string }> {
  const parts = await Promise.all(registries.map((r) => r.metrics()));
  const body = parts
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => `${p}\n`)
    .join('');
  return { contentType: registries[0]?.contentType ?? 'text/plain; version=0.0.4; charset=utf-8', body };
}

/**
 * A node `http` request handler serving the registries' metrics: `GET`/`HEAD /metrics` (any other path
 * is 404, any other method 405). Use it as the listener of `http.createServer`, or call it from a
 * router for the metrics path. A registry that fails to collect answers 500 without details.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * createServer(metricsHandler(engine.registry!)).listen(9464, '127.0.0.1')
 * ```
 */
export function metricsHandler(
  ...registries: Registry[]
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    metricsText(...registries).then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      () => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics could not be collected\n');
      },
    );
  };
}
