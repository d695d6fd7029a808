import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, project, requireBuilt, startCli } from './helpers.js';

beforeAll(requireBuilt);

// A canary that stops at 50 % until someone approves: promote/abort/Ctrl-C/kill act while it waits.
const canaryProject = () =>
  project({
    imports: "import { canary } from '@codegraph/strategy-canary';",
    extra: 'strategies: { canary: canary({ weights: [50], pause: {} }) },',
  });

const pausedAt = /pause until approved/;
const runIdOf = (stdout: string) => /run (staging-[A-Za-z0-9-]+)/.exec(stdout)?.[1];

describe('promote, abort, Ctrl-C and resume act on a deploy running in another process', () => {
  it('holds the canary at 50 % and the lock (another deploy gets exit 3) until `promote` from another shell', async () => {
    const p = await canaryProject();
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    const deploy = startCli(['deploy', 'v2', '--strategy', 'canary'], p.dir);
    await deploy.waitFor(pausedAt);
    const runId = runIdOf(deploy.stdout());

    const second = await cli(['deploy', 'v3'], p.dir);
    expect(second.code).toBe(3);
    expect(second.stderr).toMatch(/^codegraph-release: CG_ENVIRONMENT_LOCKED: /);

    const wrongRun = await cli(['promote', 'staging-20200101T000000-000000'], p.dir);
    expect(wrongRun.code).toBe(4);
    expect(wrongRun.stderr).toMatch(
      /^codegraph-release: CG_RUN_NOT_FOUND: run staging-20200101T000000-000000 is not running/,
    );

    const status = await cli(['status'], p.dir);
    expect(status.stdout).toContain(`locked by run ${runId}`);
    expect(status.stdout).toMatch(/pool v2: v2, 1\/1 ready, weight 50%/);

    const promote = await cli(['promote'], p.dir);
    expect(promote.stderr).toBe('');
    expect(promote.code).toBe(0);
    expect(promote.stdout).toContain(`promoted run ${runId}`);
    const done = await deploy.done;
    expect(done.code).toBe(0);
    // The run journaled the request it acted on.
    const journal = await readFile(join(p.stateDir, 'runs', `${runId}.jsonl`), 'utf8');
    expect(journal).toMatch(/"promote requested from another process \(request [A-Za-z0-9_-]+\): applied"/);
    expect((await cli(['status'], p.dir)).stdout).toMatch(
      /^\[staging\] serving v2 at http:\/\/127\.0\.0\.1:\d+$/m,
    );
  });

  it('skips the remaining canary steps with `promote --full`', async () => {
    const p = await project({
      imports: "import { canary } from '@codegraph/strategy-canary';",
      extra: 'strategies: { canary: canary({ weights: [25, 50], pause: {} }) },',
    });
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    const deploy = startCli(['deploy', 'v2', '--strategy', 'canary'], p.dir);
    await deploy.waitFor(pausedAt);
    const promote = await cli(['promote', '--full'], p.dir);
    expect(promote.code).toBe(0);
    expect(promote.stdout).toMatch(/promoted run staging-\S+ fully \(remaining steps skipped\)/);
    const done = await deploy.done;
    expect(done.code).toBe(0);
    expect(done.stdout.match(/pause until approved:/g)).toHaveLength(1); // only the 25 % pause waited
    expect(done.stdout).not.toContain('route v1=50% v2=50%'); // the 50 % step was skipped
    expect(done.stdout).toMatch(/route v1=75% v2=25%[\s\S]*route v2=100%/);
  });

  it('an emergency rollback from another shell supersedes the running deploy instead of failing on its lock', async () => {
    const p = await canaryProject();
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    const deploy = startCli(['deploy', 'v2', '--strategy', 'canary'], p.dir);
    await deploy.waitFor(pausedAt);
    const rollback = await cli(
      ['rollback', '--to', 'v1', '--confirm', 'CONFIRM', '--reason', 'regression'],
      p.dir,
    );
    expect(rollback.stderr).not.toMatch(/CG_ENVIRONMENT_LOCKED/);
    expect(rollback.code).toBe(0);
    const done = await deploy.done;
    expect(done.code).toBe(1);
    expect(done.stdout).toMatch(/^rolled back: v2 was undone, v1 serves/m);
    expect(done.stdout).toMatch(/superseded by an emergency rollback: regression/);
    const status = await cli(['status'], p.dir);
    expect(status.stdout).toMatch(/^\[staging\] serving v1 at http:\/\/127\.0\.0\.1:\d+$/m);
    expect(status.stdout).not.toContain('pool v2');
  });

  it('gives up on a run that does not answer within --timeout-ms and withdraws the request (exit 5)', async () => {
    const p = await canaryProject();
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    const deploy = startCli(['deploy', 'v2', '--strategy', 'canary'], p.dir);
    await deploy.waitFor(pausedAt);
    deploy.child.kill('SIGSTOP'); // alive, holding the lease, answering nothing
    try {
      const promote = await cli(['promote', '--timeout-ms', '500'], p.dir);
      expect(promote.code).toBe(5);
      expect(promote.stderr).toMatch(/^codegraph-release: CG_TIMEOUT: .*it was withdrawn, nothing was done/);
    } finally {
      deploy.child.kill('SIGCONT');
    }
    // The withdrawn request is never applied: the canary still waits at its pause.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(deploy.stdout()).not.toMatch(/route v2=100%/);
    expect((await cli(['abort'], p.dir)).code).toBe(0);
    expect((await deploy.done).code).toBe(1);
  });

  it('undoes the canary when `abort` comes from another shell: all traffic back on v1, the deploy exits 1', async () => {
    const p = await canaryProject();
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    const deploy = startCli(['deploy', 'v2', '--strategy', 'canary'], p.dir);
    await deploy.waitFor(pausedAt);
    const abort = await cli(['abort', '--reason', 'latency looks wrong'], p.dir);
    expect(abort.code).toBe(0);
    expect(abort.stdout).toMatch(/aborted run staging-/);
    const done = await deploy.done;
    expect(done.code).toBe(1);
    expect(done.stdout).toMatch(/^rolled back: v2 was undone, v1 serves/m);
    const status = await cli(['status'], p.dir);
    expect(status.stdout).toMatch(/^\[staging\] serving v1 at http:\/\/127\.0\.0\.1:\d+$/m);
    expect(status.stdout).not.toContain('pool v2');
  });

  it('treats Ctrl-C on the deploy as an abort: the canary is undone and the deploy exits 1', async () => {
    const p = await canaryProject();
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    const deploy = startCli(['deploy', 'v2', '--strategy', 'canary'], p.dir);
    await deploy.waitFor(pausedAt);
    deploy.child.kill('SIGINT');
    const done = await deploy.done;
    expect(done.code).toBe(1);
    expect(done.stderr).toMatch(/SIGINT: aborting the run/);
    expect((await cli(['status'], p.dir)).stdout).toMatch(
      /^\[staging\] serving v1 at http:\/\/127\.0\.0\.1:\d+$/m,
    );
  });

  it('refuses a new deploy after the deploy process was killed (exit 3) until `resume` finishes the run', async () => {
    const p = await canaryProject();
    expect((await cli(['deploy', 'v1'], p.dir)).code).toBe(0);
    const deploy = startCli(['deploy', 'v2', '--strategy', 'canary'], p.dir);
    await deploy.waitFor(pausedAt);
    const runId = runIdOf(deploy.stdout())!;
    deploy.child.kill('SIGKILL');
    await deploy.done;

    const refused = await cli(['deploy', 'v3'], p.dir);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(new RegExp(`^codegraph-release: CG_RUN_INTERRUPTED: run ${runId} `));
    const status = await cli(['status'], p.dir);
    expect(status.stdout).toContain(`interrupted: release v2, run ${runId}`);
    // A run whose process died is interrupted, never "running".
    expect(status.stdout).toContain(`last run: release v2 interrupted (${runId})`);
    expect(status.stdout).not.toContain('running');
    // The refusal names the CLI command to run, not an API call.
    expect(refused.stderr).toContain(`codegraph-release resume ${runId}`);

    const resume = startCli(['resume', runId, '--strategy', 'canary'], p.dir);
    const usage = await resume.done;
    expect(usage.code).toBe(2); // resume takes no --strategy: the journal says which
    const resumed = startCli(['resume', runId], p.dir);
    await resumed.waitFor(pausedAt);
    expect((await cli(['promote', runId], p.dir)).code).toBe(0);
    const done = await resumed.done;
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/release v2, resumed: run/);
    expect((await cli(['status'], p.dir)).stdout).toMatch(
      /^\[staging\] serving v2 at http:\/\/127\.0\.0\.1:\d+$/m,
    );
  });
});
