import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, project, requireBuilt, startCli } from './helpers.js';

beforeAll(requireBuilt);

/** A two-environment project whose config adds a pipeline: production needs 1 of alice/bob. */
async function pipelineProject() {
  const p = await project({ twoEnvironments: true });
  const file = join(p.dir, 'release.config.ts');
  const source = await readFile(file, 'utf8');
  await writeFile(
    file,
    source.replace(
      'export default defineConfig({',
      `export default defineConfig({
  pipelines: {
    main: {
      checkEveryMs: 100,
      stages: [
        { environment: 'staging' },
        { environment: 'production', approval: { required: 1, approvers: ['alice', 'bob'] } },
      ],
    },
  },`,
    ),
  );
  return p;
}

describe('promote-pipeline and pipeline status/approve/plan', () => {
  it('promotes staging, waits for an approval sent by another process, then promotes production', async () => {
    const p = await pipelineProject();
    const run = startCli(['promote-pipeline', 'v1'], p.dir);
    await run.waitFor(/production waits for approvals 0 of 1 needed/);

    const status = await cli(['pipeline', 'status'], p.dir);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/pipeline main: v1 running/);
    expect(status.stdout).toMatch(/staging \(staging\): serving v1, succeeded/);
    expect(status.stdout).toMatch(/production \(production\): serving nothing, waiting/);

    const stranger = await cli(['pipeline', 'approve', 'production', 'v1', '--by', 'mallory'], p.dir);
    expect(stranger.code).toBe(1);
    expect(stranger.stdout).toContain('refused: mallory is not an approver of production');

    const alice = await cli(['pipeline', 'approve', 'production', 'v1', '--by', 'alice'], p.dir);
    expect(alice.code).toBe(0);
    expect(alice.stdout).toContain('approved: alice approved production@v1');

    const done = await run.done;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/pipeline main: v1 succeeded, reached production/);
    const report = /report: (.+\.html)/.exec(done.stdout)?.[1];
    expect(report && existsSync(report)).toBe(true);
    const html = await readFile(report!, 'utf8');
    expect(html).toContain('Pipeline main');
    expect(html).toMatch(/<h2>staging <span[^>]*>succeeded<\/span><\/h2>/);
    expect(html).toMatch(/<h2>production <span[^>]*>succeeded<\/span><\/h2>/);
    expect(html).toContain('alice approved production');

    const plan = await cli(['pipeline', 'plan', 'v2'], p.dir);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/production: earliest start .*\n.*1 of 2 approvals \(alice, bob\)/);

    const nobody = await cli(
      ['pipeline', 'approve', 'production', 'v2', '--by', 'bob', '--timeout-ms', '500'],
      p.dir,
    );
    expect(nobody.code).toBe(4);
  });

  it('a killed promote-pipeline is shown as interrupted and continued by `pipeline resume`', async () => {
    const p = await pipelineProject();
    const run = startCli(['promote-pipeline', 'v1'], p.dir);
    await run.waitFor(/production waits for approvals 0 of 1 needed/);
    run.child.kill('SIGKILL');
    await run.done;

    const status = await cli(['pipeline', 'status'], p.dir);
    expect(status.stdout).toMatch(/pipeline main: v1 interrupted/);
    expect(status.stdout).toContain('interrupted: codegraph-release pipeline resume');
    const other = await cli(['promote-pipeline', 'v2'], p.dir);
    expect(other.code).toBe(3);
    expect(other.stderr).toMatch(/CG_RUN_INTERRUPTED: pipeline main is still promoting v1/);

    const resumed = startCli(['pipeline', 'resume'], p.dir);
    await resumed.waitFor(/continuing v1/);
    const bob = await cli(['pipeline', 'approve', 'production', 'v1', '--by', 'bob'], p.dir);
    expect(bob.code).toBe(0);
    const done = await resumed.done;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/pipeline main: v1 succeeded, reached production/);
    expect(done.stdout).not.toMatch(/staging: releasing v1/);
  });

  it('refuses a pipeline stage naming an unknown environment before anything runs', async () => {
    const p = await project();
    const file = join(p.dir, 'release.config.ts');
    const source = await readFile(file, 'utf8');
    await writeFile(
      file,
      source.replace(
        'export default defineConfig({',
        "export default defineConfig({\n  pipelines: { main: { stages: [{ environment: 'qa' }] } },",
      ),
    );
    const res = await cli(['promote-pipeline', 'v1'], p.dir);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      /CG_CONFIG_INVALID: config: pipelines.main.stages\[0\].environment must be one of staging/,
    );
  });
});
