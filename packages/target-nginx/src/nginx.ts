import { spawn } from 'node:child_process';
import { open, readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { AbortedError, TargetOperationError, TargetUnavailableError } from '@codegraph/release-core';
import { isProcessAlive, processStartTime } from '@codegraph/release-core/kit';
import { generationPath } from './config.js';

/** The nginx master this target started, as recorded in its state. */
export interface MasterRecord {
  pid: number;
  /** Kernel start time (Linux `/proc/<pid>/stat` field 22), so a recycled PID is never mistaken for it. */
  startTicks?: number | undefined;
}

/** Where nginx's files live and how to run it. */
export interface NginxFiles {
  binary: string;
  dir: string;
  config: string;
  errorLog: string;
  pidFile: string;
}

export const nginxFiles = (binary: string, dir: string): NginxFiles => ({
  binary,
  dir,
  config: path.join(dir, 'nginx.conf'),
  errorLog: path.join(dir, 'error.log'),
  pidFile: path.join(dir, 'nginx.pid'),
});

export const installHint =
  'install nginx (Debian: apt-get install nginx-light; in this repository: bash scripts/install-test-deps.sh)';

/** Waits `ms`; rejects with `AbortedError` when the signal aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(new AbortedError('cancelled', { cause: signal.reason }));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError('cancelled', { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export const startTicksOf = (pid: number): number | undefined => {
  const t = processStartTime(pid);
  return t === undefined ? undefined : Number(t);
};

/** Whether the recorded master still runs (not a zombie, and not a recycled PID): core's liveness check. */
export function isAlive(record: MasterRecord): boolean {
  return isProcessAlive({
    pid: record.pid,
    startTime: record.startTicks === undefined ? undefined : String(record.startTicks),
  });
}

/** Runs nginx with `args`; resolves with its exit code and output, never rejects but for a missing binary. */
export function run(
  files: NginxFiles,
  args: string[],
  what: string,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(files.binary, ['-p', `${files.dir}/`, '-c', files.config, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      output += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      output += d;
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        reject(
          new TargetOperationError(`nginx binary not found at ${files.binary}: ${installHint}`, {
            cause: err,
            details: { binary: files.binary },
          }),
        );
      } else
        reject(
          new TargetOperationError(`cannot run ${files.binary} to ${what}: ${err.message}`, { cause: err }),
        );
    });
    child.once('close', (code) => resolve({ code, output: output.trim() }));
  });
}

/** `nginx -t` on a config file; resolves with nginx's messages when the test fails, undefined when it passes. */
export async function testConfig(files: NginxFiles, config: string): Promise<string | undefined> {
  const { code, output } = await run({ ...files, config }, ['-t', '-q', '-e', 'stderr'], 'test its config');
  return code === 0 ? undefined : output || `nginx -t exited with ${code}`;
}

/** Starts a daemonized nginx master and returns it once its pid file names a live process. */
export async function startMaster(files: NginxFiles, timeoutMs: number): Promise<MasterRecord> {
  const { code, output } = await run(files, ['-e', files.errorLog], 'start');
  if (code !== 0) {
    throw new TargetOperationError(
      `nginx did not start (exit ${code}): ${output || (await tail(files.errorLog))}`,
      {
        details: { config: files.config },
      },
    );
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pid = Number((await readFile(files.pidFile, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && isAlive({ pid })) return { pid, startTicks: startTicksOf(pid) };
    if (Date.now() > deadline) {
      throw new TargetOperationError(
        `nginx started but wrote no live pid to ${files.pidFile} within ${timeoutMs} ms`,
      );
    }
    await delay(10);
  }
}

/** Whether the pid file still names the recorded master: the adoption check. */
export async function pidFileMatches(files: NginxFiles, record: MasterRecord): Promise<boolean> {
  const pid = Number((await readFile(files.pidFile, 'utf8').catch(() => '')).trim());
  return pid === record.pid && isAlive(record);
}

/**
 * An nginx master that the pid file names, that is alive, and that runs with this directory as its prefix:
 * one this target started but did not get to record (the engine died right after starting it).
 */
export async function unrecordedMaster(files: NginxFiles): Promise<MasterRecord | undefined> {
  const pid = Number((await readFile(files.pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive({ pid })) return undefined;
  const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ');
  return cmd.includes('nginx: master process') && cmd.includes(`-p ${files.dir}/ `)
    ? { pid, startTicks: startTicksOf(pid) }
    : undefined;
}

/** Size of a file, 0 when missing. */
export const sizeOf = async (file: string): Promise<number> =>
  (await stat(file).catch(() => undefined))?.size ?? 0;

/** The text a file gained after `offset`. */
export async function readFrom(file: string, offset: number): Promise<string> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const { size } = await handle.stat();
    const start = size < offset ? 0 : offset;
    const buf = Buffer.alloc(size - start);
    await handle.read(buf, 0, buf.length, start);
    return buf.toString('utf8');
  } finally {
    await handle.close();
  }
}

export const tail = async (file: string, bytes = 2_000): Promise<string> => {
  const size = await sizeOf(file);
  return (await readFrom(file, Math.max(0, size - bytes))).trim();
};

/** GET the generation nginx serves, over a fresh connection; undefined when nginx does not answer. */
export function generationOf(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: generationPath, agent: false, timeout: 1_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/**
 * Waits until nginx serves `generation` on `host:port`. Fails as soon as nginx logs an `[emerg]` or `[alert]`
 * after `logOffset` (a reload it refused), or at the deadline.
 */
export async function waitForGeneration(
  files: NginxFiles,
  host: string,
  port: number,
  generation: string,
  logOffset: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await generationOf(host, port)) === generation) return;
    const logged = (await readFrom(files.errorLog, logOffset))
      .split('\n')
      .filter((l) => /\[(emerg|alert|crit)\]/.test(l));
    if (logged.length > 0) {
      throw new TargetOperationError(`nginx refused the new configuration: ${logged.join('\n')}`, {
        details: { generation },
      });
    }
    if (Date.now() > deadline) {
      throw new TargetUnavailableError(
        `nginx did not serve configuration ${generation} on ${host}:${port} within ${timeoutMs} ms: ${await tail(files.errorLog, 600)}`,
        { details: { generation } },
      );
    }
    await delay(20, signal);
  }
}

/** The master's worker processes (Linux): whether each still accepts or finishes an older config's requests. */
export async function workersOf(master: number): Promise<{ pid: number; shuttingDown: boolean }[]> {
  const children = await readFile(`/proc/${master}/task/${master}/children`, 'utf8').catch(() => '');
  const pids = children.split(/\s+/).filter(Boolean).map(Number);
  const workers = await Promise.all(
    pids.map(async (pid) => {
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
      return cmd === undefined ? undefined : { pid, shuttingDown: cmd.includes('shutting down') };
    }),
  );
  return workers.filter((w): w is { pid: number; shuttingDown: boolean } => w !== undefined);
}

/**
 * Waits until none of `pids` accepts connections any more. After a reload, nginx starts new workers and
 * tells the old ones to shut down about 100 ms later; until then both answer.
 */
export async function retired(
  master: number,
  pids: number[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const accepting = (await workersOf(master)).filter((w) => !w.shuttingDown && pids.includes(w.pid));
    if (accepting.length === 0) return true;
    if (Date.now() > deadline) return false;
    await delay(10, signal);
  }
}

/** Waits until no old worker is left (their in-flight requests are done), or `timeoutMs` passed. */
export async function drained(master: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while ((await workersOf(master)).some((w) => w.shuttingDown)) {
    if (Date.now() > deadline) return false;
    await delay(20, signal);
  }
  return true;
}

/** Stops the recorded master: SIGQUIT (graceful), SIGTERM after `graceMs`, SIGKILL as a last resort. */
export async function stopMaster(record: MasterRecord, graceMs: number): Promise<void> {
  const send = (sig: NodeJS.Signals) => {
    try {
      process.kill(record.pid, sig);
    } catch {
      // Gone meanwhile.
    }
  };
  const gone = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (isAlive(record)) {
      if (Date.now() > deadline) return false;
      await delay(10);
    }
    return true;
  };
  if (!isAlive(record)) return;
  send('SIGQUIT');
  if (await gone(graceMs)) return;
  send('SIGTERM');
  if (await gone(2_000)) return;
  // Workers outlive a killed master: take them along.
  const workers = (await readFile(`/proc/${record.pid}/task/${record.pid}/children`, 'utf8').catch(() => ''))
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
  send('SIGKILL');
  for (const pid of workers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  await gone(5_000);
}

/** A free TCP port on `host`, found by binding port 0 and closing it again. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
