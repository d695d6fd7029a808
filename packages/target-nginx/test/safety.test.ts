import { readFile, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { ConfigInvalidError, ReleaseError, TargetOperationError } from '@codegraph/release-core';
import { nginxTarget } from '@codegraph/target-nginx';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { countByPool, masterPid, NginxHarness, requireNginx, sampleCommand } from './helpers.js';

beforeAll(requireNginx);

const h = new NginxHarness();
afterEach(async () => {
  expect(await h.cleanup(), 'processes left behind after cleanup').toEqual([]);
});

const rejection = async (p: Promise<unknown>): Promise<ReleaseError> => {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ReleaseError);
    return err as ReleaseError;
  }
  throw new Error('expected a rejection');
};

describe('nginxTarget: bad input fails before any side effect', () => {
  it('refuses bad options with CG_CONFIG_INVALID before creating the state directory', async () => {
    const stateDir = path.join(await h.dir(), 'never-created');
    const command = sampleCommand();
    const bad: Array<Record<string, unknown>> = [
      { stateDir: '', command },
      { stateDir },
      { stateDir, command, backend: {} },
      { stateDir, backend: { describe() {} } },
      { stateDir, command, nginx: { binary: 'nginx' } },
      { stateDir, command, nginx: { listenPort: 70_000 } },
      { stateDir, command, nginx: { host: 'localhost; evil' } },
      { stateDir, command, nginx: { workerProcesses: 0 } },
      { stateDir, command, nginx: { serverDirectives: 'gzip on;' } },
      { stateDir, command, nginx: { lisenPort: 8080 } },
      { stateDir, command, reloadTimeoutMs: 0 },
      { stateDir, command, prometheusFileSd: '' },
      { stateDir, command, readyTimout: 5 },
    ];
    for (const options of bad) {
      expect(() => nginxTarget(options as never), JSON.stringify(options)).toThrow(ConfigInvalidError);
    }
    await expect(stat(stateDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses pool names that would break the nginx config, and bad weights, before touching anything', async () => {
    const stateDir = path.join(await h.dir(), 'state');
    const target = await h.target({ stateDir });
    for (const pool of ['a;b', 'x y', 'pool}', '$host', '../etc', '']) {
      expect((await rejection(target.provision({ pool, version: 'v1', replicas: 1 }))).code).toBe(
        'CG_CONFIG_INVALID',
      );
      expect((await rejection(target.route({ [pool]: 100 }))).code).toBe('CG_CONFIG_INVALID');
      expect((await rejection(target.retire(pool))).code).toBe('CG_CONFIG_INVALID');
    }
    for (const weights of [{ a: 90 }, { a: 50.5, b: 49.5 }, { a: 120, b: -20 }, { a: 0 }] as Record<
      string,
      number
    >[]) {
      expect((await rejection(target.route(weights))).code).toBe('CG_CONFIG_INVALID');
    }
    await expect(stat(stateDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('says how to install nginx when the binary is missing, before starting any replica', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir, nginx: { binary: '/nonexistent/sbin/nginx' } });
    const err = await rejection(target.provision({ pool: 'stable', version: 'v1', replicas: 1 }));
    expect(err).toBeInstanceOf(TargetOperationError);
    expect(err.message).toContain('bash scripts/install-test-deps.sh');
    await expect(stat(path.join(stateDir, 'backend'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('does nothing when the operation was cancelled before it ran', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir });
    await target.provision({ pool: 'stable', version: 'v1', replicas: 1 });
    await target.provision({ pool: 'canary', version: 'v2', replicas: 1 });
    await target.route({ stable: 100 });
    const conf = await readFile(path.join(stateDir, 'nginx', 'nginx.conf'), 'utf8');
    const signal = AbortSignal.abort();
    expect((await rejection(target.route({ stable: 50, canary: 50 }, { signal }))).code).toBe('CG_ABORTED');
    expect(
      (await rejection(target.provision({ pool: 'canary', version: 'v2', replicas: 2 }, { signal }))).code,
    ).toBe('CG_ABORTED');
    expect((await rejection(target.retire('canary', { signal }))).code).toBe('CG_ABORTED');
    expect(await readFile(path.join(stateDir, 'nginx', 'nginx.conf'), 'utf8')).toBe(conf);
    expect(
      Object.fromEntries((await target.describe()).pools.map((p) => [p.name, [p.weight, p.ready]])),
    ).toEqual({
      stable: [100, 1],
      canary: [0, 1],
    });
  });

  it('refuses to retire a pool or scale it to 0 while it has weight', async () => {
    const target = await h.target();
    await target.provision({ pool: 'stable', version: 'v1', replicas: 1 });
    await target.route({ stable: 100 });
    expect((await rejection(target.retire('stable'))).code).toBe('CG_TARGET_FAILED');
    expect((await rejection(target.provision({ pool: 'stable', version: 'v1', replicas: 0 }))).code).toBe(
      'CG_TARGET_FAILED',
    );
    expect(await countByPool(await target.endpoint(), 5)).toEqual({ stable: 5 });
  });
});

describe('nginxTarget: a config nginx refuses never replaces the one serving', () => {
  it('keeps the previous config serving when nginx -t refuses the new one, and throws CG_TARGET_FAILED', async () => {
    const stateDir = await h.dir();
    const good = await h.target({ stateDir });
    await good.provision({ pool: 'stable', version: 'v1', replicas: 1 });
    await good.provision({ pool: 'canary', version: 'v2', replicas: 1 });
    await good.route({ stable: 100 });
    const url = await good.endpoint();
    const conf = path.join(stateDir, 'nginx', 'nginx.conf');
    const before = await readFile(conf, 'utf8');
    const master = await masterPid(stateDir);

    // The same state, with a directive nginx does not know injected into the server block.
    const broken = await h.target({ stateDir, nginx: { serverDirectives: ['bogus_directive on;'] } });
    const err = await rejection(broken.route({ stable: 50, canary: 50 }));
    expect(err).toBeInstanceOf(TargetOperationError);
    expect(err.message).toContain('unknown directive "bogus_directive"');
    expect(err.message).toContain('previous configuration keeps serving');

    expect(await readFile(conf, 'utf8')).toBe(before);
    expect(await masterPid(stateDir)).toBe(master);
    expect(await countByPool(url, 20)).toEqual({ stable: 20 });
    expect(Object.fromEntries((await good.describe()).pools.map((p) => [p.name, p.weight]))).toEqual({
      stable: 100,
      canary: 0,
    });
  });

  it('rolls the config back when nginx accepts it but the reload does not take (port taken)', async () => {
    const stateDir = await h.dir();
    const good = await h.target({ stateDir });
    await good.provision({ pool: 'stable', version: 'v1', replicas: 1 });
    await good.provision({ pool: 'canary', version: 'v2', replicas: 1 });
    await good.route({ stable: 100 });
    const url = await good.endpoint();
    const conf = path.join(stateDir, 'nginx', 'nginx.conf');
    const before = await readFile(conf, 'utf8');

    // Another program holds the port the new config asks for (it drops every connection).
    const squatter = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    try {
      const taken = (squatter.address() as net.AddressInfo).port;
      const moved = await h.target({ stateDir, nginx: { listenPort: taken } });
      const err = await rejection(moved.route({ stable: 50, canary: 50 }));
      expect(err.code).toBe('CG_TARGET_FAILED');
      expect(err.message).toMatch(/Address already in use/);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
    expect(await readFile(conf, 'utf8')).toBe(before);
    expect(await countByPool(url, 20)).toEqual({ stable: 20 });
    expect((await good.describe()).endpoint).toBe(url);
  });
});
