import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

// Every example is a real program: run it as CI would (a child process on the built packages), check
// its exit code and output, and prove it left no process and no temporary file behind. Each run gets
// its own TMPDIR and a marker in its environment, which every process it starts inherits (replicas
// and proxies copy process.env), so a survivor is found by the marker even when it detached.
const root = fileURLToPath(new URL('..', import.meta.url));
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Live processes carrying `marker` in their environment, or holding a file under `dir` open. */
async function survivors(marker: string, dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      if (/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))) continue; // exited, not yet reaped
      let mine = (await readFile(`/proc/${pid}/environ`, 'utf8')).includes(marker);
      if (!mine) {
        for (const fd of await readdir(`/proc/${pid}/fd`)) {
          if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')).startsWith(`${dir}/`)) mine = true;
        }
      }
      if (mine) found.push(pid);
    } catch {
      // Gone while we looked, or not ours to read.
    }
  }
  return found;
}

interface ExampleRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node <script> ...args` from the repository root and checks that it cleaned up after itself. */
async function runExample(script: string, args: string[] = [], timeoutMs = 150_000): Promise<ExampleRun> {
  const tmp = await tempDir('cg-example-tmp-');
  const marker = `CG_EXAMPLE_MARKER=${randomBytes(8).toString('hex')}`;
  const [key, value] = marker.split('=') as [string, string];
  const child = spawn(process.execPath, [join(root, script), ...args], {
    cwd: root,
    env: { ...process.env, TMPDIR: tmp, [key]: value, NO_COLOR: '1', FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  const left = await survivors(marker, tmp);
  for (const pid of left) process.kill(pid, 'SIGKILL');
  expect(left, `processes ${script} left behind\n${stdout}\n${stderr}`).toEqual([]);
  expect(await readdir(tmp), `temporary files ${script} left behind`).toEqual([]);
  return { code, stdout, stderr };
}

describe('examples run as CI runs them', () => {
  it('the demo rolls v2 out and rolls the faulty v3 back, then stops everything', async () => {
    const run = await runExample('examples/demo.mjs');
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/v1\s+succeeded/);
    expect(run.stdout).toMatch(/v2\s+succeeded/);
    expect(run.stdout).toMatch(/v3\s+rolled-back/);
    expect(run.stdout).toContain('now serving v2');
  });

  it('the custom release script promotes the v2 canary, rolls v3 back and writes a report per run', async () => {
    const out = await tempDir('cg-example-reports-');
    const run = await runExample('examples/custom-release-script/release.mjs', ['--out', out]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/analysis canary-25: fail/);
    const html = (await readdir(out)).filter((f) => f.endsWith('.html')).sort();
    expect(html).toHaveLength(3);
    const reports = await Promise.all(html.map((f) => readFile(join(out, f), 'utf8')));
    expect(reports.map((r) => /data-status="([a-z-]+)"/.exec(r)?.[1])).toEqual([
      'succeeded',
      'succeeded',
      'rolled-back',
    ]);
    const v3 = reports[2]!;
    for (const id of ['latency', 'error-rate', 'traffic-weight']) {
      expect(v3).toMatch(new RegExp(`data-chart="${id}"[\\s\\S]*?data-series="v3"`));
    }
    expect(v3).toMatch(/data-check="error_rate\[v3\]"/);
    expect((await readdir(out)).filter((f) => f.endsWith('.md'))).toHaveLength(3);
  });

  it('the in-house plugin builds, loads as a package and passes the core conformance suite', async () => {
    const run = await runExample('examples/inhouse-plugin/check.mjs');
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('audit-log conformance');
    expect(run.stdout).toMatch(/Tests\s+\d+ passed \(\d+\)/);
    expect(run.stdout).not.toMatch(/\bfailed\b/);
    expect(run.stdout).toContain('inhouse-plugin: all checks passed');
  });

  it('the platform service releases staging and production concurrently over HTTP and SSE, then stops on SIGTERM', async () => {
    const run = await runExample('examples/platform-service/client.mjs');
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('ok   staging and production released concurrently');
    expect(run.stdout).toContain('ok   production v3 rolled-back');
    expect(run.stdout).toContain('ok   pipeline v3 stopped at staging (rolled-back)');
    expect(run.stdout).toContain('ok   pipeline v4 reached production (succeeded)');
    expect(run.stdout).toContain('ok   metrics scraped');
    expect(run.stdout).toContain('ok   the service stopped on SIGTERM (exit 0)');
    expect(run.stdout).not.toContain('FAIL');
  });
});
