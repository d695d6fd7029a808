import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cli, jsonLines, project, requireBuilt, sample } from './helpers.js';

beforeAll(requireBuilt);

const running: Array<{ child: ChildProcess; exited: Promise<unknown> }> = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) {
    s.child.kill('SIGKILL');
    await s.exited;
  }
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** The sample service on a free loopback port; resolves with its base URL once it listens. */
async function service(env: Record<string, string> = {}): Promise<string> {
  const child = spawn(process.execPath, [sample, '--port', '0', '--version', 'v9'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((r) => child.once('close', r));
  running.push({ child, exited });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /"event":"listening","port":(\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.once('close', (code) => reject(new Error(`sample service exited ${code} before listening`)));
  });
  return `http://127.0.0.1:${port}`;
}

const cwd = async () => {
  const d = await mkdtemp(join(tmpdir(), 'cg-cli-validate-'));
  dirs.push(d);
  return d;
};
const fast = { CONCURRENT_REQUESTS: '5', TIMEOUT_SECS: '5' };

describe('validate is a drop-in for validate.sh: same variables, each check printed, exit 0 only when all pass', () => {
  it('passes every check of a healthy service and prints each one', async () => {
    const BASE_URL = await service();
    const r = await cli(['validate', '--expected-version', 'v9'], await cwd(), { ...fast, BASE_URL });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const check of [
      'health.status',
      'health.version',
      'graphql',
      'metrics.parse',
      'latency.p95',
      'concurrency.errors',
      'header.x-content-type-options',
    ])
      expect(r.stdout).toMatch(new RegExp(`^PASS ${check.replace('.', '\\.')}: `, 'm'));
    expect(r.stdout).toMatch(/^all checks passed: \d+ check\(s\), 0 not passed$/m);
  });

  it('exits 1 and names the failing check when a security header is missing', async () => {
    const BASE_URL = await service({ FAULT_MISSING_HEADERS: 'x-content-type-options' });
    const r = await cli(['validate'], await cwd(), { ...fast, BASE_URL });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL header\.x-content-type-options: missing$/m);
    expect(r.stdout).toMatch(/validation fail: \d+ check\(s\), 1 not passed/);
  });

  it('exits 1 when responses are slower than MAX_RESPONSE_TIME_MS', async () => {
    const BASE_URL = await service({ FAULT_LATENCY_MS: '60' });
    const r = await cli(['validate', '--skip', 'concurrency'], await cwd(), {
      ...fast,
      BASE_URL,
      MAX_RESPONSE_TIME_MS: '20',
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL latency\.p50: /m);
  });

  it('exits 1 with health.status failed when nothing answers within TIMEOUT_SECS', async () => {
    const BASE_URL = await service();
    const dead = running.pop()!;
    dead.child.kill('SIGKILL');
    await dead.exited;
    const r = await cli(['validate'], await cwd(), { BASE_URL, TIMEOUT_SECS: '1' });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL health\.status: not healthy within TIMEOUT_SECS=1/m);
  });

  it('refuses bad settings with exit 2 naming the variable, before any request', async () => {
    const noUrl = await cli(['validate'], await cwd(), { BASE_URL: '' });
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toMatch(
      /^codegraph-release: CG_CONFIG_INVALID: validation needs baseUrl \(or BASE_URL\)/,
    );
    const badNumber = await cli(['validate'], await cwd(), {
      BASE_URL: 'http://127.0.0.1:9',
      TIMEOUT_SECS: 'soon',
    });
    expect(badNumber.code).toBe(2);
    expect(badNumber.stderr).toMatch(/^codegraph-release: CG_CONFIG_INVALID: TIMEOUT_SECS must be a number/);
    const badSkip = await cli(['validate', '--skip', 'tls'], await cwd(), { BASE_URL: 'http://127.0.0.1:9' });
    expect(badSkip.code).toBe(2);
  });

  it('takes its settings from the environment’s validation config with --env, and lets BASE_URL win', async () => {
    const url = await service();
    const p = await project({
      extra:
        "validation: { baseUrl: process.env.SAMPLE_URL, expectedVersion: 'v9', checks: { concurrency: false } },",
    });
    // BASE_URL empty: vitest itself sets BASE_URL=/ in the environment the CLI inherits.
    const fromConfig = await cli(['validate', '--env', 'staging'], p.dir, {
      ...fast,
      BASE_URL: '',
      SAMPLE_URL: url,
    });
    expect(fromConfig.stderr).toBe('');
    expect(fromConfig.code).toBe(0);
    expect(fromConfig.stdout).toContain(`validating ${url}`);
    expect(fromConfig.stdout).toMatch(/^PASS health\.version: runs v9$/m);
    expect(fromConfig.stdout).not.toContain('concurrency.errors');
    const overridden = await cli(['validate', '--env', 'staging'], p.dir, {
      SAMPLE_URL: url,
      BASE_URL: 'http://127.0.0.1:9',
      TIMEOUT_SECS: '1',
    });
    expect(overridden.code).toBe(1);
    expect(overridden.stdout).toContain('validating http://127.0.0.1:9');
  });

  it('checks authentication with API_KEY and never prints the key, even with VERBOSE=true and --json', async () => {
    const key = 'cg-test-key-5f3a9b7c1d';
    const BASE_URL = await service({ API_KEY: key });
    const env = { ...fast, BASE_URL, API_KEY: key, VERBOSE: 'true' };
    const plain = await cli(
      ['validate', '--auth-path', '/api/v1/protected', '--skip', 'concurrency'],
      await cwd(),
      env,
    );
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^PASS auth\.anonymous: refused without a key \(401\)$/m);
    expect(plain.stdout).toMatch(/^PASS auth\.api_key: accepted the API key \(200\)$/m);
    expect(plain.stdout).toMatch(/observed 200, threshold 200, GET \/health/); // VERBOSE prints the details
    const json = await cli(
      ['validate', '--auth-path', '/api/v1/protected', '--skip', 'concurrency', '--json'],
      await cwd(),
      env,
    );
    const lines = jsonLines(json.stdout);
    expect(lines.filter((l) => l.type === 'check').map((l) => l.name)).toContain('auth.api_key');
    expect(lines.at(-1)).toMatchObject({ type: 'result', command: 'validate', exitCode: 0, verdict: 'pass' });
    for (const text of [plain.stdout, plain.stderr, json.stdout, json.stderr])
      expect(text).not.toContain(key);
  });
});
