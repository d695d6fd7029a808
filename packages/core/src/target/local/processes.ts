import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import net from 'node:net';
import { isProcessAlive, processStartTime } from '../../kit/process.js';
import { sleep } from '../../util/time.js';

/** A process the local target started, as recorded in the state directory. */
export interface ProcessRecord {
  pid: number;
  /** Kernel start time of the process (Linux `/proc/<pid>/stat` field 22), to detect a recycled PID. */
  startTicks?: number | undefined;
}

/** Waits `ms`; rejects with `AbortedError` as soon as the signal aborts. */
export const delay = (ms: number, signal: AbortSignal | undefined, what: string): Promise<void> =>
  sleep(ms, signal, what);

function stat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after its closing one.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Inodes of the sockets listening on `port` (Linux), or undefined where the platform does not tell. */
function listeningInodes(port: number): Set<string> | undefined {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  let readable = false;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
      readable = true;
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is field 1, st field 3 (0A = LISTEN), inode field 9.
      if (f.length > 9 && f[3] === '0A' && f[1]!.endsWith(hex)) inodes.add(f[9]!);
    }
  }
  return readable ? inodes : undefined;
}

/**
 * Whether the socket listening on `port` belongs to a process of the process group `pgid` (a replica
 * and whatever it spawned). Free ports are chosen before the replica binds them, so another process may
 * take one in between and answer the health check in the replica's place. `undefined` off Linux.
 */
export function groupListensOn(pgid: number, port: number): boolean | undefined {
  const inodes = listeningInodes(port);
  if (inodes === undefined) return undefined;
  if (inodes.size === 0) return false;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    if (Number(stat(Number(pid))?.[2]) !== pgid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return true;
      } catch {}
    }
  }
  return false;
}

/** Start time of a live process, when the platform tells it (Linux). */
export function startTicksOf(pid: number): number | undefined {
  const t = processStartTime(pid);
  return t === undefined ? undefined : Number(t);
}

/**
 * Whether the recorded process still runs: the PID exists, is not a zombie waiting to be reaped, and
 * (where the platform tells) started when the record says, so a recycled PID is not mistaken for it.
 */
export function isAlive(record: ProcessRecord): boolean {
  return isProcessAlive({
    pid: record.pid,
    startTime: record.startTicks === undefined ? undefined : String(record.startTicks),
  });
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    // Replicas run in their own process group: signal the whole group so their children go too.
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * Stops a process the target started: SIGTERM to its group, then SIGKILL after `graceMs`. Resolves once
 * it is gone. Never signals a PID whose start time no longer matches the record.
 */
export async function stopProcess(record: ProcessRecord, graceMs: number): Promise<void> {
  if (!isAlive(record)) return;
  signalGroup(record.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(record)) {
    if (Date.now() >= deadline) {
      signalGroup(record.pid, 'SIGKILL');
      const killDeadline = Date.now() + 5_000;
      while (isAlive(record) && Date.now() < killDeadline) await delay(10, undefined, 'stop');
      return;
    }
    await delay(10, undefined, 'stop');
  }
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

/** What to run for one detached process. */
export interface SpawnSpec {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string | undefined;
  logFile: string;
}

/** A detached process that was started, with a promise that settles when it exits. */
export interface Spawned extends ProcessRecord {
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitedNow(): boolean;
}

/**
 * Starts a detached process in its own process group with stdout and stderr appended to `logFile`,
 * so it outlives this process. Rejects when the command cannot be started at all (ENOENT...).
 */
export async function spawnDetached(spec: SpawnSpec): Promise<Spawned> {
  const fd = openSync(spec.logFile, 'a');
  try {
    writeSync(fd, `--- ${new Date().toISOString()} start ${spec.command}\n`);
    const child = spawn(spec.command, spec.args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: spec.env,
      ...(spec.cwd ? { cwd: spec.cwd } : {}),
    });
    let done = false;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        done = true;
        resolve({ code, signal });
      });
    });
    // A spawn failure is reported by the 'spawn' wait below; nobody else awaits `exited` then.
    exited.catch(() => {});
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    const pid = child.pid!;
    return { pid, startTicks: startTicksOf(pid), exited, exitedNow: () => done };
  } finally {
    closeSync(fd);
  }
}

/** The last `bytes` of a log file, for error messages. */
export async function tail(file: string, bytes = 2_000): Promise<string> {
  try {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      const start = Math.max(0, size - bytes);
      const buf = Buffer.alloc(size - start);
      await handle.read(buf, 0, buf.length, start);
      return buf.toString('utf8').trim();
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}
