import { beforeAll, describe, expect, it } from 'vitest';
import { cli, jsonLines, lastJson, project, requireBuilt, startCli } from './helpers.js';

beforeAll(requireBuilt);

// The verification gate measures 6 times, 400 ms apart: long enough to watch, short enough for a test.
const slowVerify = 'verifyGate: { count: 6, intervalMs: 400 },';

describe('watching a release as it happens', () => {
  it('prints every measurement as it is taken, in plain lines and as analysis.measured events with --json', async () => {
    const p = await project({ extra: slowVerify });
    const plain = await cli(['deploy', 'v1'], p.dir);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/measured verify #1 \S+: .* pass/);
    expect(plain.stdout).toMatch(/measured verify #6 /);
    const json = await cli(['deploy', 'v2', '--json'], p.dir);
    expect(json.code).toBe(0);
    const measured = jsonLines(json.stdout).filter((l) => l.type === 'analysis.measured');
    expect(measured.length).toBeGreaterThanOrEqual(6);
    const verify = measured.filter((m) => m.gate === 'verify');
    expect(verify.map((m) => m.round)).toContain(5);
    expect(verify[0]).toMatchObject({ round: 0, version: 'v2', verifier: 'http-validation' });
    expect(verify[0]).toHaveProperty('metric');
    expect(verify[0]).toHaveProperty('verdict');
    expect(verify[0]).toHaveProperty('query');
  });

  it('follows a running deploy from another shell with status --watch, and ends with its exit code', async () => {
    const p = await project({ extra: slowVerify });
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    const deploy = startCli(['deploy', 'v2'], p.dir);
    await deploy.waitFor(/phase verify/);
    const watch = await cli(['status', '--watch', '--interval', '200ms', '--timeout', '60s'], p.dir);
    const done = await deploy.done;
    expect(done.code).toBe(0);
    expect(watch.code).toBe(0);
    expect(watch.stdout).toMatch(/measured verify #\d \S+: /);
    expect(watch.stdout).toMatch(/finished: succeeded, v2 serves/);
  });

  it('stops watching after --timeout with exit 3 while the run still holds the environment', async () => {
    const p = await project({ extra: 'verifyGate: { count: 12, intervalMs: 400 },' });
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    const deploy = startCli(['deploy', 'v2'], p.dir);
    await deploy.waitFor(/phase verify/);
    const watch = await cli(['status', '--watch', '--interval', '200ms', '--timeout', '1s'], p.dir);
    expect(watch.code).toBe(3);
    expect(watch.stderr).toMatch(/stopped watching run .* it has not finished/);
    expect((await deploy.done).code).toBe(0);
  });

  it('bounds a deploy with --timeout: the run is aborted and undone to the previous version, exit 1', async () => {
    const p = await project({ extra: slowVerify });
    expect((await cli(['deploy', 'v1', '--timeout', '2m'], p.dir)).code).toBe(0);
    const bounded = await cli(['deploy', 'v2', '--timeout', '1s', '--json'], p.dir);
    expect(bounded.code).toBe(1);
    expect(bounded.stderr).toMatch(/--timeout of 1s passed: aborting the run/);
    const result = lastJson<{ type: string; result: { status: string; serving: string; reason: string } }>(
      bounded.stdout,
    );
    expect(result.result).toMatchObject({ status: 'rolled-back', serving: 'v1' });
  });

  it('refuses a --timeout that is not a duration before anything runs (exit 2)', async () => {
    const p = await project();
    const r = await cli(['deploy', 'v1', '--timeout', 'soon'], p.dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CG_CONFIG_INVALID: --timeout must be a duration/);
  });
});
