import { promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type LocalTarget, localTarget } from '../src/index.js';

let target: LocalTarget | undefined;
let foreign: Server | undefined;
let dir: string | undefined;
afterEach(async () => {
  await target?.destroy();
  await new Promise((r) => (foreign ? foreign.close(r) : r(undefined)));
  if (dir) await fs.rm(dir, { recursive: true, force: true });
  target = undefined;
  foreign = undefined;
  dir = undefined;
});

describe('localTarget and ports lost to another process', () => {
  it('does not take another process answering on the replica port for the replica, and says the error is worth a retry', async () => {
    dir = await fs.mkdtemp(join(tmpdir(), 'cg-ports-'));
    // The "other process": a server that grabs the port between the target choosing it and the replica binding it.
    foreign = createServer((_req, res) => res.end('{"status":"healthy","version":"someone-else"}'));
    const server = foreign;
    target = localTarget({
      stateDir: join(dir, 'local'),
      readyTimeoutMs: 5_000,
      stopTimeoutMs: 1_000,
      command: ({ port }) => {
        server.listen(port, '127.0.0.1');
        // The replica itself never manages to listen (its port is taken).
        return { command: process.execPath, args: ['-e', 'setTimeout(() => {}, 60_000)'] };
      },
    });
    const error = await target.provision({ pool: 'v1', version: 'v1', replicas: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'CG_TARGET_FAILED', retryable: true });
    expect(String((error as Error).message)).toMatch(/taken by another process/);
    expect((await target.describe()).pools).toEqual([]);
  });
});
