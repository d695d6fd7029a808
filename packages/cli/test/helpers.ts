import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localTarget } from '@codegraph/release-core';
import { afterAll, afterEach } from 'vitest';

export const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
export const sample = fileURLToPath(new URL('../../../examples/sample-service/server.mjs', import.meta.url));
const coreDist = fileURLToPath(new URL('../../core/dist/index.js', import.meta.url));

/** The tests run the built bin: fail loudly (never skip) when it is missing. */
export function requireBuilt(): void {
  for (const [file, dir] of [
    [coreDist, 'packages/core'],
    [bin, 'packages/cli'],
  ] as const) {
    if (!existsSync(file))
      throw new Error(`${file} is missing: run \`npx tsup\` in ${dir} (or npm run build)`);
  }
}

/** What a finished CLI process left. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A CLI process still running, with its output so far. */
export interface LiveCli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout matches (rejects if the process exits first). */
  waitFor(pattern: RegExp): Promise<void>;
  done: Promise<CliRun>;
}

const children = new Map<ChildProcess, Promise<CliRun>>();

/** Starts `codegraph-release args...` in `cwd`. */
export function startCli(args: string[], cwd: string, env: Record<string, string> = {}): LiveCli {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const watchers: Array<() => void> = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of [...watchers]) w();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const done = new Promise<CliRun>((resolve) => {
    child.on('close', (code) => {
      children.delete(child);
      for (const w of [...watchers]) w();
      resolve({ code, stdout: out, stderr: err });
    });
  });
  children.set(child, done);
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    done,
    waitFor: (pattern) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(out)) {
            watchers.splice(watchers.indexOf(check), 1);
            resolve();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            watchers.splice(watchers.indexOf(check), 1);
            reject(new Error(`exited (${child.exitCode}) before ${pattern}:\n${out}\n${err}`));
          }
        };
        watchers.push(check);
        check();
      }),
  };
}

/** Runs `codegraph-release args...` to the end. */
export const cli = (args: string[], cwd: string, env: Record<string, string> = {}) =>
  startCli(args, cwd, env).done;

/** The last JSON line (the result or error record), typed by the caller. */
export const lastJson = <T>(stdout: string): T => jsonLines(stdout).at(-1) as unknown as T;

/** One JSON value per stdout line. */
export const jsonLines = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown> & { type: string });

/** Options of {@link project}'s config. */
export interface ProjectOptions {
  /** Extra environment variables per version for the sample service (faults). */
  faults?: Record<string, Record<string, string>>;
  /** TypeScript source of extra environment fields, e.g. `knownVersions: ['v0'],`. */
  extra?: string;
  /** Extra import lines. */
  imports?: string;
  /** A second environment (same shape) so `--env` is needed. */
  twoEnvironments?: boolean;
}

/** A temporary project: a `release.config.ts` releasing the sample service on localTarget. */
export interface Project {
  dir: string;
  stateDir: string;
  /** Stops every replica and proxy the project's environments started. */
  destroy(): Promise<void>;
}

const projects: Project[] = [];

/** Writes a project in a fresh temp dir; it is destroyed and removed after each test, even on failure. */
export async function project(options: ProjectOptions = {}): Promise<Project> {
  const dir = await mkdtemp(join(tmpdir(), 'cg-cli-'));
  const stateDir = join(dir, '.codegraph-release');
  const envs = options.twoEnvironments ? ['staging', 'production'] : ['staging'];
  const config = `import { type ConfigContext, defineConfig } from '@codegraph/release-cli';
import { httpValidation, localTarget, rolling } from '@codegraph/release-core';
${options.imports ?? ''}
const faults: Record<string, Record<string, string>> = ${JSON.stringify(options.faults ?? {})};
const environment = (name: string) => ({ stateDir, backupProgress }: ConfigContext) => ({
  target: localTarget({
    stateDir: \`\${stateDir}/local-\${name}\`,
    command: ({ version, port }) => ({
      command: process.execPath,
      args: [${JSON.stringify(sample)}, '--port', String(port), '--version', version],
      env: faults[version] ?? {},
    }),
  }),
  strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
  verifiers: [httpValidation({ loadPath: '/api/v1/search?q=graph', loadRequests: 40, latencySamples: 5 })],
  replicas: 1,
  ${options.extra ?? ''}
});
export default defineConfig({
  environments: { ${envs.map((e) => `${e}: environment('${e}')`).join(', ')} },
});
`;
  await writeFile(join(dir, 'release.config.ts'), config);
  const p: Project = {
    dir,
    stateDir,
    async destroy() {
      for (const e of envs) {
        const target = localTarget({
          stateDir: join(stateDir, `local-${e}`),
          command: () => ({ command: 'true' }),
        });
        await target.destroy();
      }
    },
  };
  projects.push(p);
  return p;
}

afterEach(async () => {
  const live = [...children];
  for (const [c] of live) c.kill('SIGKILL');
  await Promise.all(live.map(([, done]) => done));
  for (const p of projects.splice(0)) {
    await p.destroy();
    await rm(p.dir, { recursive: true, force: true });
  }
});

afterAll(() => {
  for (const c of children.keys()) c.kill('SIGKILL');
});
