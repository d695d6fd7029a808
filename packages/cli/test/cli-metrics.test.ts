import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cli, project, requireBuilt, startCli } from './helpers.js';

beforeAll(requireBuilt);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const until = async (what: string, check: () => boolean | Promise<boolean>, ms = 20_000) => {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

const gateways: Array<{ child: ChildProcess; dir: string }> = [];
afterEach(async () => {
  for (const g of gateways.splice(0)) {
    if (g.child.exitCode === null) {
      const exited = new Promise((r) => g.child.once('exit', r));
      g.child.kill('SIGTERM');
      await exited;
    }
    await rm(g.dir, { recursive: true, force: true });
  }
});

/** A real Prometheus Pushgateway on a free loopback port, its persistence file in a temp dir. */
async function startPushgateway(): Promise<string> {
  try {
    execFileSync('sh', ['-c', 'command -v prometheus-pushgateway']);
  } catch {
    throw new Error(
      'prometheus-pushgateway is missing: run `bash scripts/install-test-deps.sh` (Debian package prometheus-pushgateway)',
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'cg-pgw-'));
  const port = await freePort();
  const child = spawn(
    'prometheus-pushgateway',
    [
      `--web.listen-address=127.0.0.1:${port}`,
      `--persistence.file=${join(dir, 'pgw.data')}`,
      '--log.level=warn',
    ],
    { stdio: 'ignore' },
  );
  gateways.push({ child, dir });
  const url = `http://127.0.0.1:${port}`;
  await until('the pushgateway to answer', async () => {
    if (child.exitCode !== null) throw new Error(`prometheus-pushgateway exited (${child.exitCode})`);
    return fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
  });
  return url;
}

describe('the CLI serves and pushes the engine metrics of a one-shot command', () => {
  it('serves /metrics on 127.0.0.1 during a deploy and through the linger, with the final run counted', async () => {
    const p = await project();
    const run = startCli(['deploy', 'v1', '--metrics-port', '0', '--metrics-linger', '3'], p.dir);
    await until('the metrics URL on stderr', () =>
      /metrics at http:\/\/127\.0\.0\.1:\d+\/metrics/.test(run.stderr()),
    );
    const url = /metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(run.stderr())![1]!;
    const during = await fetch(url);
    expect(during.status).toBe(200);
    expect(during.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await during.text()).toMatch(/^# TYPE codegraph_release_runs_total counter$/m);

    await run.waitFor(/succeeded: v1 released and verified/);
    // The command is over; the linger keeps the final values up for a last scrape.
    const after = await (await fetch(url)).text();
    expect(after).toMatch(
      /^codegraph_release_runs_total\{environment="staging",kind="release",status="succeeded"\} 1$/m,
    );
    expect(after).toMatch(/^codegraph_release_traffic_weight\{environment="staging",pool="v1"\} 100$/m);
    expect(after).toMatch(
      /^codegraph_release_phase_duration_seconds_count\{environment="staging",phase="deploy"\} 1$/m,
    );
    const done = await run.done;
    expect(done.code).toBe(0);
    await expect(fetch(url)).rejects.toThrow();
  });

  it("serves an environment's own registry (`metrics: {}` in the config) as well", async () => {
    const p = await project({ extra: 'metrics: {},' });
    const run = startCli(['deploy', 'v1', '--metrics-port', '0', '--metrics-linger', '2'], p.dir);
    await run.waitFor(/succeeded: v1 released and verified/);
    const url = /metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(run.stderr())![1]!;
    expect(await (await fetch(url)).text()).toMatch(
      /^codegraph_release_runs_total\{environment="staging",kind="release",status="succeeded"\} 1$/m,
    );
    expect((await run.done).code).toBe(0);
  });

  it('pushes the final values to a real Pushgateway as job codegraph-release grouped by environment, never printing its password', async () => {
    const gateway = await startPushgateway();
    const password = 'pgw-pass-7f3a91';
    const withAuth = gateway.replace('http://', `http://releaser:${password}@`);
    const p = await project();
    const r = await cli(['deploy', 'v1', '--pushgateway', withAuth], p.dir);
    expect(r.stderr).toMatch(
      /^codegraph-release: metrics pushed to http:\/\/\*\*\*@127\.0\.0\.1:\d+ \(job codegraph-release, environment staging\)$/m,
    );
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(password);

    const text = await (await fetch(`${gateway}/metrics`)).text();
    const runs = text.split('\n').filter((l) => l.startsWith('codegraph_release_runs_total{'));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toContain('environment="staging"');
    expect(runs[0]).toContain('job="codegraph-release"');
    expect(runs[0]).toContain('kind="release"');
    expect(runs[0]).toContain('status="succeeded"');
    expect(runs[0]).toMatch(/ 1$/);
    expect(text).toMatch(
      /^push_time_seconds\{environment="staging",instance="",job="codegraph-release"\} \d/m,
    );
  });

  it('reports an unreachable Pushgateway on stderr without its secret and keeps the run exit code', async () => {
    const port = await freePort();
    const p = await project();
    const r = await cli(
      ['deploy', 'v1', '--pushgateway', `http://ops:hunter2-secret@127.0.0.1:${port}/?token=tok-abc123`],
      p.dir,
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /^codegraph-release: could not push metrics to http:\/\/\*\*\*@127\.0\.0\.1:\d+: /m,
    );
    expect(r.stdout + r.stderr).not.toMatch(/hunter2-secret|tok-abc123/);
  });

  it('refuses bad metrics flags with CG_CONFIG_INVALID before loading anything', async () => {
    const p = await project();
    for (const args of [
      ['--metrics-port', '70000'],
      ['--metrics-port', 'http'],
      ['--metrics-linger', '-1'],
      ['--pushgateway', 'ftp://gateway'],
      ['--pushgateway'],
    ]) {
      const r = await cli(['deploy', 'v1', ...args], p.dir);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(
        /^codegraph-release: CG_CONFIG_INVALID: --(metrics-port|metrics-linger|pushgateway) /,
      );
      expect(r.stdout).not.toContain('preflight');
    }
    expect((await cli(['history'], p.dir)).stdout).toContain('[staging] no finished runs yet');
  });
});
