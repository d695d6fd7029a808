import { readFileSync } from 'node:fs';

/** A process told apart from a later one that reuses its PID: the PID plus when it started. */
export interface ProcessIdentity {
  pid: number;
  /** The kernel's start time of the process (Linux: clock ticks since boot), when it can be read. */
  startTime?: string | undefined;
}

let ownStart: { value: string | undefined } | undefined;

/**
 * The start time of a process, from `/proc/<pid>/stat` (field 22). Undefined where there is no
 * `/proc` or the process is gone.
 *
 * @example
 * ```ts
 * const me = { pid: process.pid, startTime: processStartTime(process.pid) }
 * ```
 */
export function processStartTime(pid: number): string | undefined {
  // This process's own start time never changes: read once (every run's lock owner names it).
  if (pid === process.pid) {
    ownStart ??= { value: statFields(pid)?.[19] };
    return ownStart.value;
  }
  return statFields(pid)?.[19];
}

/** This process's identity. */
export function currentProcess(): ProcessIdentity {
  return { pid: process.pid, startTime: processStartTime(process.pid) };
}

/** The fields of `/proc/<pid>/stat` after the command name: [0] is the state, [19] the start time. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * Whether a process on this host is still the one identified: the PID exists, is not a zombie waiting
 * to be reaped, and, when a start time was recorded and can be read, it matches (a recycled PID is a
 * different process).
 *
 * @example
 * ```ts
 * if (!isProcessAlive(owner)) takeOver()
 * ```
 */
export function isProcessAlive(identity: ProcessIdentity): boolean {
  if (!Number.isInteger(identity.pid) || identity.pid <= 0) return false;
  try {
    process.kill(identity.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const fields = statFields(identity.pid);
  if (!fields) return true;
  if (fields[0] === 'Z' || fields[0] === 'X') return false;
  return identity.startTime === undefined || fields[19] === identity.startTime;
}
