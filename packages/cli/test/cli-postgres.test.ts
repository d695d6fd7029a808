import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from '../../store-postgres/test/helpers/postgres.js';
import { cli, lastJson, project, requireBuilt, startCli } from './helpers.js';

beforeAll(requireBuilt);

let server: TestPostgres | undefined;
let databases = 0;
beforeAll(async () => {
  server = await startPostgres();
}, 60_000);
afterAll(async () => {
  await server?.destroy();
});

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const pausedAt = /pause until approved/;
const runIdOf = (stdout: string) => /run (staging-[A-Za-z0-9-]+)/.exec(stdout)?.[1];

/**
 * Two "hosts" sharing one database: the first project deploys; the second is another working directory
 * with its own config and state directory, its target pointing at the same replicas (as a remote target
 * would), and only `DATABASE_URL` in common.
 */
async function twoHosts() {
  const a = await project({
    imports:
      "import { canary } from '@codegraph/strategy-canary';\nimport { postgresStore } from '@codegraph/store-postgres';",
    extra:
      'store: postgresStore({ connectionString: process.env.DATABASE_URL }),\n  strategies: { canary: canary({ weights: [50], pause: {} }) },',
  });
  const b = await mkdtemp(join(tmpdir(), 'cg-cli-host-b-'));
  dirs.push(b);
  const config = (await readFile(join(a.dir, 'release.config.ts'), 'utf8')).replace(
    /stateDir: `\$\{stateDir\}\/local-\$\{name\}`/,
    `stateDir: ${JSON.stringify(join(a.stateDir, 'local-staging'))}`,
  );
  expect(config).toContain(join(a.stateDir, 'local-staging'));
  await writeFile(join(b, 'release.config.ts'), config);
  const password = 'pg-secret-91c4';
  const url = await server!.createRole(`releaser${++databases}`, password, `hosts${databases}`);
  return { a, b, env: { DATABASE_URL: url }, password };
}

describe('a deploy on one host is steered and inspected from another through PostgreSQL', () => {
  it('`promote`, `status` and `history` from another working directory reach a canary paused in the first', async () => {
    const { a, b, env, password } = await twoHosts();
    expect((await cli(['deploy', 'v1'], a.dir, env)).code).toBe(0);
    const deploy = startCli(['deploy', 'v2', '--strategy', 'canary'], a.dir, env);
    await deploy.waitFor(pausedAt);
    const runId = runIdOf(deploy.stdout())!;

    const status = await cli(['status'], b, env);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`locked by run ${runId}`);
    expect(status.stdout).toMatch(/pool v2: v2, 1\/1 ready, weight 50%/);

    const promote = await cli(['promote', '--json'], b, env);
    expect(promote.stderr).toBe('');
    expect(promote.code).toBe(0);
    expect(lastJson<{ applied: boolean; runId: string }>(promote.stdout)).toMatchObject({
      applied: true,
      runId,
    });
    const done = await deploy.done;
    expect(done.code).toBe(0);
    expect(done.stdout).toContain('succeeded: v2 released and verified in staging');

    const history = await cli(['history', '--json'], b, env);
    expect(history.code).toBe(0);
    const runs = history.stdout.match(/"version":"v\d"/g);
    expect(runs).toEqual(expect.arrayContaining(['"version":"v1"', '"version":"v2"']));
    expect((await cli(['status'], b, env)).stdout).toMatch(/^\[staging\] serving v2 at /m);

    // The state is in the database, in no directory of either host; the password is in no output.
    for (const dir of [a.stateDir, join(b, '.codegraph-release')]) {
      expect(existsSync(join(dir, 'runs')), dir).toBe(false);
      expect(existsSync(join(dir, 'locks')), dir).toBe(false);
    }
    for (const r of [status, promote, done, history]) expect(r.stdout + r.stderr).not.toContain(password);
    const client = new pg.Client({ connectionString: env.DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: string }>(
        "select count(*) as n from codegraph_release.history where environment = 'staging'",
      );
      expect(Number(rows[0]!.n)).toBe(2);
    } finally {
      await client.end();
    }
  });

  it('`abort` from another working directory undoes the paused canary; both hosts then see it rolled back', async () => {
    const { a, b, env } = await twoHosts();
    expect((await cli(['deploy', 'v1'], a.dir, env)).code).toBe(0);
    const deploy = startCli(['deploy', 'v2', '--strategy', 'canary'], a.dir, env);
    await deploy.waitFor(pausedAt);
    const runId = runIdOf(deploy.stdout())!;

    const abort = await cli(['abort', '--reason', 'error budget burning'], b, env);
    expect(abort.stderr).toBe('');
    expect(abort.code).toBe(0);
    expect(abort.stdout).toContain(`aborted run ${runId}`);
    const done = await deploy.done;
    expect(done.code).toBe(1);
    expect(done.stdout).toContain('rolled back: v2 was undone, v1 serves');

    for (const dir of [a.dir, b]) {
      expect((await cli(['status'], dir, env)).stdout).toMatch(/^\[staging\] serving v1 at /m);
      const last = (await cli(['history', '--json'], dir, env)).stdout;
      expect(last).toContain(`"runId":"${runId}"`);
      expect(last).toMatch(/"status":"rolled-back"/);
    }
    const again = await cli(['abort'], b, env);
    expect(again.code).toBe(4);
    expect(again.stderr).toMatch(/^codegraph-release: CG_RUN_NOT_FOUND: no deploy is running in staging/);
  });
});
