import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from '../../store-postgres/test/helpers/postgres.js';
import { commandNames } from '../src/index.js';
import { bin, cli, project, requireBuilt } from './helpers.js';

beforeAll(requireBuilt);

// The workflows keep their state in PostgreSQL (DATABASE_URL): a real server for this file, a database per test.
let server: TestPostgres | undefined;
let databases = 0;
beforeAll(async () => {
  server = await startPostgres();
}, 60_000);
afterAll(async () => {
  await server?.destroy();
});
const database = () => server!.createDatabase(`wf${++databases}`);

/** A project like the workflows', its state in PostgreSQL at `DATABASE_URL`. */
const postgresProject = () =>
  project({
    imports: "import { postgresStore } from '@codegraph/store-postgres';",
    extra: 'store: postgresStore({ connectionString: process.env.DATABASE_URL }),',
  });

const folder = fileURLToPath(new URL('../../../examples/github-actions/', import.meta.url));
const workflow = (name: string) => readFile(join(folder, name), 'utf8');

/** The `run:` commands of a workflow (single lines and folded `>-` / `|` blocks), joined into one line each. */
function runCommands(yaml: string): string[] {
  const lines = yaml.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*(?:- )?)run: ?(.*)$/.exec(lines[i]!);
    if (!m) continue;
    if (m[2] !== '>-' && m[2] !== '|' && m[2] !== '>') {
      out.push(m[2]!.trim());
      continue;
    }
    const block: string[] = [];
    while (
      i + 1 < lines.length &&
      (lines[i + 1]!.trim() === '' || (/^\s*/.exec(lines[i + 1]!)?.[0].length ?? 0) > m[1]!.length)
    ) {
      block.push(lines[++i]!.trim());
    }
    out.push(block.filter(Boolean).join(' '));
  }
  return out.filter((c) => c.includes('codegraph-release'));
}

/** The words of a command line (double quotes kept together; variables left as written). */
const words = (line: string) => (line.match(/"[^"]*"|\S+/g) ?? []).map((w) => w.replace(/^"|"$/g, ''));

/** Runs a workflow's command line in bash, as the runner would, with the built bin for `npx codegraph-release`. */
function runAsWorkflow(line: string, cwd: string, env: Record<string, string>) {
  const script = line.replace(/npx codegraph-release/g, `"${process.execPath}" "${bin}"`);
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      'bash',
      ['-c', script],
      { cwd, env: { ...process.env, NO_COLOR: '1', ...env } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('the GitHub Actions workflows call the CLI the way it works', () => {
  it('uses only commands and flags the CLI has, in release.yml and rollback.yml', async () => {
    const calls = [
      ...runCommands(await workflow('release.yml')),
      ...runCommands(await workflow('rollback.yml')),
    ];
    expect(calls.length).toBeGreaterThanOrEqual(6);
    const cwd = await mkdtemp(join(tmpdir(), 'cg-cli-wf-'));
    dirs.push(cwd);
    for (const call of calls) {
      const [npx, name, command, ...rest] = words(call);
      expect(`${npx} ${name}`).toBe('npx codegraph-release');
      expect(commandNames).toContain(command);
      const help = await cli([command!, '--help'], cwd);
      expect(help.code).toBe(0);
      for (const flag of rest.filter((w) => w.startsWith('--')))
        expect(help.stdout, `${command} ${flag}`).toContain(flag);
    }
  });

  it('refuses the rollback step without CONFIRM (exit 2, nothing changed) and rolls back with it', async () => {
    const rollbackLine = runCommands(await workflow('rollback.yml')).find((c) => / rollback /.test(c))!;
    expect(rollbackLine).toContain('--confirm "$CONFIRMATION"');
    const p = await postgresProject();
    const DATABASE_URL = await database();
    const db = { DATABASE_URL };
    expect((await cli(['deploy', 'v1'], p.dir, db)).code).toBe(0);
    expect((await cli(['deploy', 'v2'], p.dir, db)).code).toBe(0);
    const inputs = {
      TARGET_VERSION: 'v1',
      ENVIRONMENT: 'staging',
      REASON: 'Critical performance regression',
      DATABASE_URL,
    };
    const historyLine = runCommands(await workflow('rollback.yml')).find((c) => / history /.test(c))!;
    const listed = await runAsWorkflow(historyLine, p.dir, inputs);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/v1/);
    expect(listed.stdout).toMatch(/v2/);

    for (const confirmation of ['', 'confirm', 'yes']) {
      const refused = await runAsWorkflow(rollbackLine, p.dir, { ...inputs, CONFIRMATION: confirmation });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/^codegraph-release: CG_ROLLBACK_UNCONFIRMED: /);
    }
    expect((await cli(['status'], p.dir, db)).stdout).toMatch(
      /^\[staging\] serving v2 at http:\/\/127\.0\.0\.1:\d+$/m,
    );
    expect((await cli(['history', '--json'], p.dir, db)).stdout).not.toContain('"kind":"rollback"');

    const done = await runAsWorkflow(rollbackLine, p.dir, { ...inputs, CONFIRMATION: 'CONFIRM' });
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/^\[staging\] emergency rollback to v1: run staging-/m);
    expect(existsSync(join(p.dir, 'rollback-report'))).toBe(true);
    const statusLine = runCommands(await workflow('rollback.yml')).find((c) => / status /.test(c))!;
    expect((await runAsWorkflow(statusLine, p.dir, inputs)).stdout).toMatch(
      /^\[staging\] serving v1 at http:\/\/127\.0\.0\.1:\d+$/m,
    );
    expect((await cli(['history', '--json'], p.dir, db)).stdout).toContain('"kind":"rollback"');
    // Nothing of the state went to the runner's disk: no file store in the state directory.
    expect(existsSync(join(p.stateDir, 'runs'))).toBe(false);
    expect(existsSync(join(p.stateDir, 'history'))).toBe(false);
  });

  it("runs release.yml's steps as written on a fresh runner, with every trace of the release in PostgreSQL", async () => {
    // The checkout: a config like the workflow's (the sample service stands in for codegraph-api, so
    // its verifiers fit the sample), state in PostgreSQL; the workflow's own config is planned below.
    const runner = await postgresProject();
    const env = {
      VERSION: 'v1.2.3',
      ENVIRONMENT: 'staging',
      STRATEGY: 'rolling',
      GITHUB_RUN_ID: '4242',
      GITHUB_ACTOR: 'octocat',
      GITHUB_SHA: 'f00dfeed',
      DATABASE_URL: await database(),
    };
    const [plan, deploy, validate, status] = runCommands(await workflow('release.yml'));
    expect(plan).toMatch(/ plan /);
    expect(deploy).toMatch(/ deploy /);
    expect(validate).toMatch(/ validate /);
    expect(status).toMatch(/ status /);

    const planned = await runAsWorkflow(plan!, runner.dir, env);
    expect(planned.stderr).toBe('');
    expect(planned.code).toBe(0);
    const released = await runAsWorkflow(deploy!, runner.dir, env);
    expect(released.stderr).toBe('');
    expect(released.code).toBe(0);
    expect(released.stdout).toContain('succeeded: v1.2.3 released and verified in staging');
    expect(existsSync(join(runner.dir, 'release-report'))).toBe(true);
    const shown = await runAsWorkflow(status!, runner.dir, env);
    expect(shown.code).toBe(0);
    const endpoint = /^\[staging\] serving v1\.2\.3 at (http:\/\/127\.0\.0\.1:\d+)$/m.exec(shown.stdout)?.[1];
    expect(endpoint, shown.stdout).toBeDefined();
    // The validate step's own env: BASE_URL is the repository variable CODEGRAPH_BASE_URL.
    const validated = await runAsWorkflow(validate!, runner.dir, {
      ...env,
      BASE_URL: endpoint!,
      TIMEOUT_SECS: '120',
      CONCURRENT_REQUESTS: '50',
      MAX_RESPONSE_TIME_MS: '200',
    });
    expect(validated.code, validated.stdout + validated.stderr).toBe(0);

    // A later job on another runner, with the same config and DATABASE_URL: only the database carries
    // the release over; nothing of it is on the first runner's disk.
    const elsewhere = await mkdtemp(join(tmpdir(), 'cg-cli-wf-runner2-'));
    dirs.push(elsewhere);
    await writeFile(
      join(elsewhere, 'release.config.ts'),
      await readFile(join(runner.dir, 'release.config.ts')),
    );
    const history = await cli(['history', '--json', '--env', 'staging'], elsewhere, env);
    expect(history.code).toBe(0);
    expect(history.stdout).toContain('"version":"v1.2.3"');
    const runId = /run (staging-[A-Za-z0-9-]+)/.exec(released.stdout)?.[1];
    expect(runId).toBeDefined();
    expect(history.stdout).toContain(
      `"runId":"${runId}","kind":"release","version":"v1.2.3","status":"succeeded"`,
    );
    expect(existsSync(join(runner.stateDir, 'runs'))).toBe(false);
    for (const r of [planned, released, shown, validated, history])
      expect(r.stdout + r.stderr).not.toContain('postgres://');
  });

  it("plans every deployment_strategy choice with the workflows' release.config.ts, and asks for production's secrets", async () => {
    const yaml = await workflow('release.yml');
    const choices = /deployment_strategy:[\s\S]*?options: \[([^\]]+)\]/
      .exec(yaml)![1]!
      .split(',')
      .map((s) => s.trim());
    expect(choices).toEqual(['rolling', 'blue-green', 'canary']);
    const state = await mkdtemp(join(tmpdir(), 'cg-cli-wf-state-'));
    dirs.push(state);
    const config = join(folder, 'release.config.ts');
    const DATABASE_URL = await database();
    const noDatabase = await cli(['plan', 'v1.2.3', '--config', config, '--env', 'staging'], state, {
      CODEGRAPH_STATE_DIR: state,
      DATABASE_URL: '',
    });
    expect(noDatabase.code).toBe(2);
    expect(noDatabase.stderr).toMatch(/^codegraph-release: CG_CONFIG_INVALID: set DATABASE_URL/);
    for (const strategy of choices) {
      const r = await cli(
        ['plan', 'v1.2.3', '--config', config, '--env', 'staging', '--strategy', strategy],
        state,
        {
          CODEGRAPH_STATE_DIR: state,
          DATABASE_URL,
        },
      );
      expect(r.stderr, strategy).toBe('');
      expect(r.code, strategy).toBe(0);
      expect(r.stdout).toContain('provision');
    }
    const prod = await cli(['status', '--config', config, '--env', 'production'], state, {
      CODEGRAPH_STATE_DIR: state,
      DATABASE_URL,
      SLACK_WEBHOOK_URL: '',
    });
    expect(prod.code).toBe(2);
    expect(prod.stderr).toMatch(/^codegraph-release: CG_CONFIG_INVALID: set SLACK_WEBHOOK_URL/);
  });
});
