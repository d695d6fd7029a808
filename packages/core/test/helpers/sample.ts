import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Absolute path of the sample CodeGraph-like service (`examples/sample-service/server.mjs`). */
export const sampleServerPath = fileURLToPath(
  new URL('../../../../examples/sample-service/server.mjs', import.meta.url),
);

/** Options of {@link startSample}. */
export interface StartSampleOptions {
  /** Reported by `/health`, `codegraph_build_info` and the `x-codegraph-version` header. @default 'v1' */
  version?: string;
  /** Extra environment variables (`API_KEY`, `FAULT_*`, `DATA_DIR`...). */
  env?: Record<string, string>;
  /** Extra command-line flags, e.g. `['--latency-ms', '20']`. */
  args?: string[];
  /** How long to wait for the `listening` line. @default 15000 */
  timeoutMs?: number;
}

/** A running sample service. */
export interface RunningSample {
  /** Base URL, e.g. `http://127.0.0.1:41234` (`https://` when started with `--tls-cert`). */
  url: string;
  port: number;
  pid: number;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code once the process is gone. */
  stop(graceMs?: number): Promise<number | null>;
}

const running = new Set<ChildProcess>();

/**
 * Spawns the sample service on a free loopback port and resolves once it prints its `listening` line.
 * Rejects (and leaves no process) when it exits or stays silent past `timeoutMs`.
 *
 * @example
 * ```ts
 * const svc = await startSample({ version: 'v2', env: { API_KEY: 'k' } });
 * afterEach(() => svc.stop());
 * ```
 */
export async function startSample(options: StartSampleOptions = {}): Promise<RunningSample> {
  const version = options.version ?? 'v1';
  const child = spawn(
    process.execPath,
    [sampleServerPath, '--port', '0', '--version', version, ...(options.args ?? [])],
    {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
  exited.then(() => running.delete(child));

  const tls = (options.args ?? []).includes('--tls-cert');
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => fail(new Error(`sample service silent for ${options.timeoutMs ?? 15_000} ms`)),
      options.timeoutMs ?? 15_000,
    );
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"listening"'));
      if (!line) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) =>
      fail(new Error(`sample service exited with ${code} before listening: ${stderr.trim()}`)),
    );
  });

  const stop = async (graceMs = 5_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    stderr: () => stderr,
    stop,
  };
}

/** Kills every sample service this test file started and that is still running; for `afterAll`. */
export async function stopAllSamples(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}
