import { type ChildProcess, spawn } from 'node:child_process';
import { hostname } from 'node:os';
import type { Store } from '../store/types.js';

/** A store-holding process the suite starts, pauses and kills. */
export interface ChildHolder {
  child: ChildProcess;
  /** Resolves with the first output line that matches. */
  waitFor(pattern: RegExp, ms: number): Promise<RegExpExecArray>;
  /** Sends one command line (`append`, `release`). */
  send(command: string): void;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

// The child imports the factory module, takes the lease, prints its token and obeys commands on stdin.
const script = `
const [moduleUrl, environment, runId] = process.argv.slice(1);
const { hostname } = await import('node:os');
const mod = await import(moduleUrl);
const store = await (mod.openStore ?? mod.default)(process.env);
let lock;
try {
  lock = await store.lock(environment, { runId, pid: process.pid, host: hostname(), since: new Date().toISOString() });
} catch (e) { console.log('REFUSED ' + e.code); process.exit(0); }
lock.lost.addEventListener('abort', () => console.log('LOST ' + (lock.lost.reason && lock.lost.reason.code)));
console.log('TOKEN ' + lock.token);
let buf = '';
process.stdin.on('data', async (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const cmd = buf.slice(0, i); buf = buf.slice(i + 1);
    if (cmd === 'append') {
      try { await store.append(runId, { type: 'note', message: 'late write' }, { environment, token: lock.token }); console.log('APPENDED'); }
      catch (e) { console.log('APPEND-REFUSED ' + e.code); }
    } else if (cmd === 'release') { await lock.release(); console.log('RELEASED'); }
  }
});
`;

/** Starts a process that opens the store through `module` (with `env`) and takes `environment`'s lease. */
export function startHolder(
  module: string,
  env: Record<string, string>,
  environment: string,
  runId: string,
): ChildHolder {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, module, environment, runId], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (d) => {
    out += d;
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    waitFor(pattern, ms) {
      return new Promise((resolve, reject) => {
        // At the deadline, output already waiting in the pipe is read first (a loaded machine can run
        // this timer before the poll phase that delivers it): only then is it a timeout.
        const timer = setTimeout(
          () =>
            setImmediate(() => {
              const m = pattern.exec(out);
              if (m) resolve(m);
              else
                reject(
                  new Error(
                    `the holder process did not print ${pattern} within ${ms} ms; it printed: ${out}`,
                  ),
                );
            }),
          ms,
        );
        const look = () => {
          const m = pattern.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m);
          } else if (child.exitCode !== null) {
            clearTimeout(timer);
            reject(new Error(`the holder process exited; it printed: ${out}`));
          } else waiters.push(look);
        };
        look();
      });
    },
    send(command) {
      child.stdin!.write(`${command}\n`);
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill(signal);
      await exited;
    },
  };
}

/** Tries to take the lease until it is granted or `ms` pass; returns it and how long it took. */
export async function lockWithin(store: Store, environment: string, runId: string, ms: number) {
  const started = Date.now();
  for (;;) {
    try {
      const lock = await store.lock(environment, {
        runId,
        pid: process.pid,
        host: hostname(),
        since: new Date().toISOString(),
      });
      return { lock, tookMs: Date.now() - started };
    } catch (err) {
      if ((err as { code?: string }).code !== 'CG_ENVIRONMENT_LOCKED' || Date.now() - started > ms) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
