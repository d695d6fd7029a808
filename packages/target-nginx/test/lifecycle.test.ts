import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { proxyAnalysis } from '@codegraph/release-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  alive,
  countByPool,
  masterPid,
  NginxHarness,
  requireNginx,
  sampleCommand,
  startPrometheus,
  until,
} from './helpers.js';

beforeAll(requireNginx);

const h = new NginxHarness();
afterEach(async () => {
  expect(await h.cleanup(), 'processes left behind after cleanup').toEqual([]);
});

const childrenOf = async (pid: number): Promise<number[]> =>
  (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => ''))
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);

const replicaPids = async (endpoints: string[]): Promise<number[]> =>
  Promise.all(
    endpoints.map(async (e) => ((await (await fetch(`${e}/health`)).json()) as { pid: number }).pid),
  );

describe('nginxTarget: adoption across processes', () => {
  it('a second target instance adopts the running nginx: same master, same endpoint, its routes apply', async () => {
    const stateDir = await h.dir();
    const first = await h.target({ stateDir });
    await first.provision({ pool: 'stable', version: 'v1', replicas: 1 });
    await first.provision({ pool: 'canary', version: 'v2', replicas: 1 });
    await first.route({ stable: 90, canary: 10 });
    const url = await first.endpoint();
    const master = await masterPid(stateDir);
    await first.close();

    const second = await h.target({ stateDir });
    const state = await second.describe();
    expect(state.endpoint).toBe(url);
    expect(Object.fromEntries(state.pools.map((p) => [p.name, p.weight]))).toEqual({
      stable: 90,
      canary: 10,
    });

    await second.route({ stable: 50, canary: 50 });
    expect(await masterPid(stateDir)).toBe(master);
    expect(await countByPool(url, 100)).toEqual({ stable: 50, canary: 50 });
  });

  it('adopts the nginx it started but never recorded (the engine died right after starting it)', async () => {
    const stateDir = await h.dir();
    const first = await h.target({ stateDir });
    await first.provision({ pool: 'stable', version: 'v1', replicas: 1 });
    await first.provision({ pool: 'canary', version: 'v2', replicas: 1 });
    await first.route({ stable: 100 });
    const url = await first.endpoint();
    const master = await masterPid(stateDir);
    const stateFile = path.join(stateDir, 'nginx', 'state.json');
    const { master: _, port: __, ...unrecorded } = JSON.parse(await readFile(stateFile, 'utf8'));
    await writeFile(stateFile, JSON.stringify(unrecorded));

    const second = await h.target({ stateDir });
    await second.route({ stable: 50, canary: 50 });
    expect(await masterPid(stateDir)).toBe(master);
    expect((await second.describe()).endpoint).toBe(url);
    expect(await countByPool(url, 100)).toEqual({ stable: 50, canary: 50 });
  });

  it('loads a config that was written but never reloaded (the engine died in between)', async () => {
    const stateDir = await h.dir();
    const conf = path.join(stateDir, 'nginx', 'nginx.conf');
    const first = await h.target({ stateDir });
    await first.provision({ pool: 'stable', version: 'v1', replicas: 1 });
    await first.provision({ pool: 'canary', version: 'v2', replicas: 1 });
    await first.route({ stable: 50, canary: 50 });
    const written = await readFile(conf, 'utf8');
    await first.route({ stable: 100 });
    await writeFile(conf, written);

    const second = await h.target({ stateDir });
    await second.route({ stable: 50, canary: 50 });
    expect(await countByPool(await second.endpoint(), 100)).toEqual({ stable: 50, canary: 50 });
  });

  it('starts nginx again on its recorded port, with the recorded weights, when its master died', async () => {
    const stateDir = await h.dir();
    const target = await h.target({ stateDir });
    await target.provision({ pool: 'stable', version: 'v1', replicas: 1 });
    await target.route({ stable: 100 });
    const url = await target.endpoint();
    const master = await masterPid(stateDir);
    const workers = await childrenOf(master);
    for (const pid of [master, ...workers]) process.kill(pid, 'SIGKILL');
    await until(() => ![master, ...workers].some(alive), 5_000, 'nginx killed');
    expect((await h.target({ stateDir }).then((t) => t.describe())).endpoint).toBeUndefined();

    expect(await target.endpoint()).toBe(url);
    expect(await masterPid(stateDir)).not.toBe(master);
    expect(await countByPool(url, 10)).toEqual({ stable: 10 });
  });
});

describe('nginxTarget: traffic figures from the access log', () => {
  it("counts each pool's requests, errors and latencies since the reset point", async () => {
    const stateDir = await h.dir();
    // Every search answered by v2 fails with 500.
    const command = sampleCommand({ v2: { FAULT_ERROR_RATE: '1' } });
    const target = await h.target({ stateDir, command });
    await target.provision({ pool: 'stable', version: 'v1', replicas: 2 });
    await target.provision({ pool: 'canary', version: 'v2', replicas: 1 });
    await target.route({ stable: 70, canary: 30 });
    const url = await target.endpoint();
    await countByPool(url, 10);
    await target.resetTraffic();

    expect(await countByPool(url, 100, '/api/v1/search?q=graph')).toEqual({ stable: 70, canary: 30 });
    // nginx logs a request after answering it: wait for the last lines before reading the figures.
    const logged = async (n: number) =>
      until(
        async () =>
          (await target.traffic('stable')).requests + (await target.traffic('canary')).requests >= n,
        5_000,
        `${n} requests in the access log`,
      );
    await logged(100);
    const stable = await target.traffic('stable');
    const canary = await target.traffic('canary');
    expect(stable).toMatchObject({ pool: 'stable', requests: 70, errors: 0 });
    expect(canary).toMatchObject({ pool: 'canary', requests: 30, errors: 30 });
    expect(stable.latencyMs).toHaveLength(70);
    expect(canary.latencyMs.every((ms) => ms >= 0 && ms < 5_000)).toBe(true);
    expect(Date.parse(stable.since)).toBeLessThanOrEqual(Date.now());

    // Later calls add what the log gained (one more WRR cycle of 20: 14 + 6).
    await countByPool(url, 20, '/api/v1/search?q=graph');
    await logged(120);
    expect(await target.traffic('stable')).toMatchObject({ requests: 84, errors: 0 });
    expect(await target.traffic('canary')).toMatchObject({ requests: 36, errors: 36 });

    // Another instance reads the same figures; resetting one pool leaves the other's.
    const other = await h.target({ stateDir, command });
    expect((await other.traffic('canary')).requests).toBe(36);
    await other.resetTraffic('canary');
    expect((await target.traffic('canary')).requests).toBe(0);
    expect((await target.traffic('stable')).requests).toBe(84);
    await expect(target.traffic('ghost')).rejects.toMatchObject({ code: 'CG_CONFIG_INVALID' });
  });

  it("lets the core proxyAnalysis verifier fail a canary that errors and pass one that doesn't", async () => {
    const command = sampleCommand({ v2: { FAULT_ERROR_RATE: '1' } });
    const target = await h.target({ command });
    await target.provision({ pool: 'stable', version: 'v1', replicas: 1 });
    await target.provision({ pool: 'bad', version: 'v2', replicas: 1 });
    await target.provision({ pool: 'good', version: 'v3', replicas: 1 });
    await target.route({ stable: 80, bad: 10, good: 10 });
    await target.resetTraffic();
    expect(await countByPool(await target.endpoint(), 300, '/api/v1/search?q=graph')).toEqual({
      stable: 240,
      bad: 30,
      good: 30,
    });
    const pools = (await target.describe()).pools;
    const judge = (pool: string) =>
      proxyAnalysis({ pools: [pool], minRequests: 20, maxErrorRate: 0.05, maxP95LatencyMs: 2_000 }).verify({
        environment: 'test',
        version: pool,
        pools: pools.filter((p) => p.name === pool),
        endpoint: pools[0]!.endpoints[0]!,
        target,
      });
    const bad = await judge('bad');
    expect(bad.verdict).toBe('fail');
    expect(bad.checks.find((c) => c.name === 'error_rate[bad]')).toMatchObject({
      verdict: 'fail',
      observed: 1,
    });
    expect((await judge('good')).verdict).toBe('pass');
  });
});

describe('nginxTarget: Prometheus file_sd', () => {
  it('lists every replica with pool and version labels, and a real Prometheus scrapes them all', async () => {
    const stateDir = await h.dir();
    const fileSd = path.join(stateDir, 'sd', 'codegraph.json');
    const target = await h.target({ stateDir, prometheusFileSd: fileSd });
    await target.provision({ pool: 'stable', version: 'v1', replicas: 2 });
    await target.provision({ pool: 'canary', version: 'v2', replicas: 1 });

    const expected = async () =>
      (await target.describe()).pools
        .flatMap((p) =>
          p.endpoints.map((e) => ({ address: new URL(e).host, pool: p.name, version: p.version })),
        )
        .sort((a, b) => a.address.localeCompare(b.address));
    const listed = async () =>
      (
        JSON.parse(await readFile(fileSd, 'utf8')) as {
          targets: string[];
          labels: { pool: string; version: string };
        }[]
      )
        .flatMap((g) => g.targets.map((address) => ({ address, ...g.labels })))
        .sort((a, b) => a.address.localeCompare(b.address));
    expect(await listed()).toEqual(await expected());
    expect(await listed()).toHaveLength(3);

    const prometheus = await startPrometheus(fileSd);
    try {
      const scraped = async () => {
        const targets = await prometheus.targets();
        return {
          up: targets.every((t) => t.health === 'up'),
          targets: targets.map(({ address, pool, version }) => ({ address, pool, version })),
        };
      };
      await until(
        async () =>
          JSON.stringify(await scraped()) === JSON.stringify({ up: true, targets: await expected() }),
        20_000,
        'Prometheus scraping all 3 replicas',
      );

      await target.provision({ pool: 'canary', version: 'v2', replicas: 2 });
      expect(await listed()).toHaveLength(4);
      await until(
        async () => (await scraped()).targets.filter((t) => t.pool === 'canary').length === 2,
        20_000,
        'Prometheus scraping the new canary replica',
      );

      await target.retire('canary');
      expect((await listed()).map((t) => t.pool)).toEqual(['stable', 'stable']);
    } finally {
      await prometheus.stop();
    }
    await target.destroy();
    expect(JSON.parse(await readFile(fileSd, 'utf8'))).toEqual([]);
  });
});

describe('nginxTarget: destroy', () => {
  it('stops its own nginx master, workers and replicas, and leaves another nginx running', async () => {
    const mineDir = await h.dir();
    const mine = await h.target({ stateDir: mineDir });
    const otherDir = await h.dir();
    const other = await h.target({ stateDir: otherDir });
    for (const t of [mine, other]) {
      await t.provision({ pool: 'stable', version: 'v1', replicas: 2 });
      await t.route({ stable: 100 });
    }
    const state = await mine.describe();
    const master = await masterPid(mineDir);
    const pids = [master, ...(await childrenOf(master)), ...(await replicaPids(state.pools[0]!.endpoints))];
    expect(pids.every(alive)).toBe(true);

    await mine.destroy();
    expect(pids.filter(alive), 'processes still running after destroy()').toEqual([]);
    expect((await mine.describe()).pools).toEqual([]);
    expect(alive(await masterPid(otherDir))).toBe(true);
    expect(await countByPool((await other.describe()).endpoint!, 5)).toEqual({ stable: 5 });
  });
});
