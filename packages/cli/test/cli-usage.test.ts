import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cli, jsonLines, project, requireBuilt } from './helpers.js';

const cliDir = fileURLToPath(new URL('..', import.meta.url));

beforeAll(requireBuilt);

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
const emptyDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'cg-cli-empty-'));
  dirs.push(d);
  return d;
};

/** The one-line error contract: exactly one stderr line naming the code. */
function expectOneLineError(stderr: string, code: string) {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^codegraph-release: ${code}: `));
}

describe('usage and configuration errors exit 2 with one line naming the CG_ code, before anything changes', () => {
  it('prints the commands and every exit code with --help', async () => {
    const r = await cli(['--help'], await emptyDir());
    expect(r.code).toBe(0);
    for (const c of [
      'validate',
      'plan',
      'deploy',
      'promote',
      'abort',
      'rollback',
      'resume',
      'status',
      'history',
      'backup',
    ])
      expect(r.stdout).toMatch(new RegExp(`^  ${c}`, 'm'));
    for (const code of ['0', '1', '2', '3', '4', '5', '130'])
      expect(r.stdout).toMatch(new RegExp(`^  ${code} `, 'm'));
  });

  it('gives every command its own --help', async () => {
    const cwd = await emptyDir();
    for (const c of [
      'validate',
      'plan',
      'deploy',
      'promote',
      'abort',
      'rollback',
      'resume',
      'status',
      'history',
      'backup',
    ]) {
      const r = await cli([c, '--help'], cwd);
      expect(r.code, c).toBe(0);
      expect(r.stdout, c).toMatch(new RegExp(`^Usage: codegraph-release ${c}`));
    }
  });

  it('prints its version and help on a topic', async () => {
    const cwd = await emptyDir();
    const version = await cli(['--version'], cwd);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const topic = await cli(['help', 'rollback'], cwd);
    expect(topic.code).toBe(0);
    expect(topic.stdout).toMatch(/^Usage: codegraph-release rollback --to <version> --confirm CONFIRM/);
    const bare = await cli([], cwd);
    expect(bare.code).toBe(2); // no command is a usage error, with the help
    expect(bare.stdout).toContain('Usage: codegraph-release <command>');
  });

  it('exits 2 with one line when the CLI is installed without its peer @codegraph/release-core', async () => {
    const dir = await emptyDir();
    await mkdir(join(dir, 'dist'));
    for (const f of ['bin.js', 'index.js']) await copyFile(join(cliDir, 'dist', f), join(dir, 'dist', f));
    await copyFile(join(cliDir, 'package.json'), join(dir, 'package.json'));
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [join(dir, 'dist', 'bin.js'), 'status'], { cwd: dir });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.on('close', (code) => resolve({ code, stderr }));
    });
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, 'CG_CONFIG_INVALID');
    expect(r.stderr).toContain('@codegraph/release-core');
  });

  it('refuses an unknown command and an unknown flag', async () => {
    const cwd = await emptyDir();
    const unknown = await cli(['deplyo', 'v1'], cwd);
    expect(unknown.code).toBe(2);
    expectOneLineError(unknown.stderr, 'CG_CONFIG_INVALID');
    const flag = await cli(['status', '--colour'], cwd);
    expect(flag.code).toBe(2);
    expectOneLineError(flag.stderr, 'CG_CONFIG_INVALID');
    expect(flag.stderr).toContain('--colour');
  });

  it('says where to put a config when the working directory has none', async () => {
    const r = await cli(['status'], await emptyDir());
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, 'CG_CONFIG_INVALID');
    expect(r.stderr).toContain('release.config');
  });

  it('asks for --env when the config has several environments, and refuses an unknown one', async () => {
    const p = await project({ twoEnvironments: true });
    const none = await cli(['status'], p.dir);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--env staging|production');
    const wrong = await cli(['status', '--env', 'prod'], p.dir);
    expect(wrong.code).toBe(2);
    expectOneLineError(wrong.stderr, 'CG_CONFIG_INVALID');
  });

  it('refuses a config whose defaultEnvironment is not one of its environments', async () => {
    const cwd = await emptyDir();
    await writeFile(
      join(cwd, 'release.config.mjs'),
      `export default { defaultEnvironment: 'prod', environments: { staging: {} } };\n`,
    );
    const r = await cli(['status'], cwd);
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, 'CG_CONFIG_INVALID');
    expect(r.stderr).toContain('defaultEnvironment "prod"');
  });

  it('refuses a malformed version before writing any journal', async () => {
    const p = await project();
    const r = await cli(['deploy', 'v1;rm -rf'], p.dir);
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, 'CG_CONFIG_INVALID');
    expect(r.stderr).toContain('version "v1;rm -rf" is not valid');
    const runs = join(p.stateDir, 'runs');
    expect(existsSync(runs) ? await readdir(runs) : []).toEqual([]);
    // Checked before the config is loaded: the same answer where there is no config at all.
    const empty = await cli(['plan', '../etc'], await emptyDir());
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/^codegraph-release: CG_CONFIG_INVALID: version "\.\.\/etc" is not valid/);
  });

  it('refuses a rollback without --confirm CONFIRM (exit 2, CG_ROLLBACK_UNCONFIRMED) before loading the config', async () => {
    const cwd = await emptyDir(); // no config at all: the confirmation is checked first
    for (const confirm of [[], ['--confirm', 'confirm'], ['--confirm', 'yes']]) {
      const r = await cli(['rollback', '--to', 'v1', '--reason', 'regression', ...confirm], cwd);
      expect(r.code).toBe(2);
      expectOneLineError(r.stderr, 'CG_ROLLBACK_UNCONFIRMED');
    }
    const noReason = await cli(['rollback', '--to', 'v1', '--confirm', 'CONFIRM'], cwd);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('--reason');
  });

  it('ends --json output with an error record carrying the code and exit code', async () => {
    const r = await cli(['rollback', '--to', 'v1', '--reason', 'x', '--json'], await emptyDir());
    expect(r.code).toBe(2);
    const last = jsonLines(r.stdout).at(-1);
    expect(last).toMatchObject({ type: 'error', code: 'CG_ROLLBACK_UNCONFIRMED', exitCode: 2 });
  });

  it('tells promote and abort there is nothing to act on when no deploy runs (exit 4)', async () => {
    const p = await project();
    for (const c of ['promote', 'abort']) {
      const r = await cli([c], p.dir);
      expect(r.code, c).toBe(4);
      expectOneLineError(r.stderr, 'CG_RUN_NOT_FOUND');
    }
  });

  it('says an unknown run cannot be resumed (exit 4)', async () => {
    const p = await project();
    const r = await cli(['resume', 'staging-20260101T000000-abcdef'], p.dir);
    expect(r.code).toBe(4);
    expectOneLineError(r.stderr, 'CG_RUN_NOT_FOUND');
  });
});
