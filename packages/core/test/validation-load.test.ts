import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigInvalidError, loadTest } from '../src/index.js';
import { startSample, stopAllSamples } from './helpers/sample.js';

const servers: http.Server[] = [];
async function listen(server: http.Server): Promise<number> {
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}
afterAll(async () => {
  await stopAllSamples();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

describe('concurrent-load step (loadTest)', () => {
  it('reads chunked, length-delimited and close-delimited answers, and counts each status', async () => {
    let n = 0;
    const port = await listen(
      http.createServer((_req, res) => {
        const i = n++;
        if (i % 3 === 0) {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('chunk one;');
          setImmediate(() => res.end('chunk two'));
        } else if (i % 3 === 1) {
          res.writeHead(503, { 'content-length': '4', connection: 'close' }).end('busy');
        } else {
          res.shouldKeepAlive = false;
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('until close');
        }
      }),
    );
    const r = await loadTest({ url: `http://127.0.0.1:${port}/x`, connections: 3, requests: 60 });
    expect(r.requests).toBe(60);
    expect(r.statuses).toEqual({ 200: 40, 503: 20 });
    expect(r.errors).toBe(20);
    expect(r.latencyMs.p50).toBeGreaterThan(0);
  });

  it('counts a refused connection as a network error', async () => {
    const down = await startSample({ version: 'v2.0.0' });
    await down.stop();
    const r = await loadTest({ url: `${down.url}/health`, connections: 2, requests: 4 });
    expect(r).toMatchObject({ requests: 4, errors: 4, statuses: { network: 4 } });
    expect(r.firstError).toMatch(/ECONNREFUSED/);
  });
});

describe('loadTest input', () => {
  it('rejects a bad URL, bad sizes and header injection before connecting', async () => {
    let hits = 0;
    const port = await listen(
      http.createServer((_req, res) => {
        hits++;
        res.end('ok');
      }),
    );
    const url = `http://127.0.0.1:${port}/`;
    await expect(loadTest({ url: 'nope' })).rejects.toBeInstanceOf(ConfigInvalidError);
    await expect(loadTest({ url, connections: 0 })).rejects.toBeInstanceOf(ConfigInvalidError);
    await expect(loadTest({ url, requests: 1.5 })).rejects.toBeInstanceOf(ConfigInvalidError);
    await expect(loadTest({ url, headers: { 'x-a': 'b\r\nx-injected: 1' } })).rejects.toBeInstanceOf(
      ConfigInvalidError,
    );
    expect(hits).toBe(0);
  });
});
