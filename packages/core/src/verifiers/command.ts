import { spawn } from 'node:child_process';
import type { Check, Verifier, VerifierResult, VerifyContext } from '../analysis/types.js';
import { AbortedError, ConfigInvalidError, VerifierError } from '../errors.js';
import { resultOf, thresholdCheck } from './utils/verdict.js';

/**
 * Options of {@link commandCheck}.
 *
 * @example
 * ```ts
 * commandCheck({ name: 'smoke', command: './smoke.sh', args: ['--pool', '{{pool}}'], threshold: { max: 0.01 } })
 * ```
 */
export interface CommandCheckOptions {
  /** The verifier's (and check's) name. */
  name: string;
  /** The program to run: a path or a name on `PATH`. Never a shell line: nothing is interpreted. */
  command: string;
  /**
   * Its arguments, one per element; `{{pool}}`, `{{version}}` and `{{environment}}` are replaced inside
   * an element, which stays one argument whatever the value holds. @default []
   */
  args?: string[];
  /**
   * Bounds for the number the program prints as the last line of its stdout. @default undefined: only the
   * exit status decides
   */
  threshold?: { min?: number; max?: number };
  /** Milliseconds the program may run; then its whole process group is killed. @default 30000 */
  timeoutMs?: number;
  /** Extra environment variables (added to the engine's). @default {} */
  env?: Record<string, string>;
  /** Working directory. @default the engine's */
  cwd?: string;
  /** Largest stdout kept, in bytes (the rest is dropped; the last line is what counts). @default 65536 */
  maxOutputBytes?: number;
}

/** The defaults {@link CommandCheckOptions} documents. */
export const commandCheckDefaults = Object.freeze({ timeoutMs: 30_000, maxOutputBytes: 64 * 1024 });

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const PLACEHOLDER = /\{\{\s*(pool|version|environment)\s*\}\}/g;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
}

/** Runs argv in its own process group; kills the group on timeout or abort, whatever the program does. */
function run(
  o: Required<Omit<CommandCheckOptions, 'threshold' | 'cwd'>> & { cwd?: string },
  args: string[],
  signal: AbortSignal | undefined,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError(`commandCheck ${o.name} was cancelled`));
    const child = spawn(o.command, args, {
      cwd: o.cwd,
      env: { ...process.env, ...o.env },
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true,
      shell: false,
    });
    let stdout = '';
    let settled = false;
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const finish = (err: Error | undefined, out?: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(out!);
    };
    const timer = setTimeout(() => {
      killGroup();
      finish(
        new VerifierError(
          `commandCheck ${o.name}: ${o.command} ran longer than ${o.timeoutMs} ms and was killed`,
          { retryable: true },
        ),
      );
    }, o.timeoutMs);
    const onAbort = () => {
      killGroup();
      finish(new AbortedError(`commandCheck ${o.name} was cancelled`));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      stdout = (stdout + chunk.toString()).slice(-o.maxOutputBytes);
    });
    child.once('error', (err) =>
      finish(
        new VerifierError(`commandCheck ${o.name}: cannot run ${o.command}: ${err.message}`, {
          retryable: false,
        }),
      ),
    );
    child.once('close', (code, sig) => {
      // The program is done; anything it left behind in its group goes too.
      killGroup();
      finish(undefined, { code, signal: sig, stdout });
    });
  });
}

/**
 * A check that runs a program (what Argo Rollouts' Job provider does, without a cluster): exit status 0
 * passes, 1 fails, any other status or a signal is an error measurement (a retryable `VerifierError`).
 * With `threshold`, the last line of stdout must be a number within it (missing or not a number:
 * `inconclusive`, never a pass). The program gets argv, never a shell line, so a pool or version name
 * cannot inject anything; it runs in its own process group, which is killed on timeout or abort.
 *
 * @example
 * ```ts
 * const smoke = commandCheck({ name: 'smoke', command: process.execPath, args: ['smoke.mjs', '{{pool}}'], timeoutMs: 10_000 })
 * await runGate('verify', [smoke], ctx)
 * ```
 */
export function commandCheck(options: CommandCheckOptions) {
  const o = { ...commandCheckDefaults, args: [], env: {}, ...options };
  const bad = (why: string) => new ConfigInvalidError(`commandCheck ${String(o.name)}: ${why}`);
  if (typeof o.name !== 'string' || !/^[\w.:-]+$/.test(o.name)) throw bad('name must be a word');
  if (typeof o.command !== 'string' || o.command === '' || o.command.includes('\0'))
    throw bad('command must be a program path or name');
  if (!Array.isArray(o.args) || o.args.some((a) => typeof a !== 'string' || a.includes('\0')))
    throw bad('args must be strings');
  if (!(o.timeoutMs > 0) || !Number.isFinite(o.timeoutMs)) throw bad('timeoutMs must be a number > 0');
  if (!(o.maxOutputBytes > 0)) throw bad('maxOutputBytes must be > 0');
  const t = o.threshold;
  if (t !== undefined) {
    const num = (v: unknown) => v === undefined || (typeof v === 'number' && Number.isFinite(v));
    if ((t.min === undefined && t.max === undefined) || !num(t.min) || !num(t.max))
      throw bad('threshold needs a finite min and/or max');
  }
  return {
    name: o.name,
    async verify(ctx: VerifyContext): Promise<VerifierResult> {
      const pool = ctx.pools[0];
      const values: Record<string, string> = {
        pool: pool?.name ?? '',
        version: pool?.version ?? ctx.version,
        environment: ctx.environment,
      };
      const args = o.args.map((a) => a.replace(PLACEHOLDER, (_, k: string) => values[k] ?? ''));
      const out = await run(o, args, ctx.signal);
      const query = [o.command, ...args].map((a) => JSON.stringify(a)).join(' ');
      if (out.code !== 0 && out.code !== 1) {
        throw new VerifierError(
          `commandCheck ${o.name}: ${o.command} ended with ${out.signal ? `signal ${out.signal}` : `status ${out.code}`}`,
          { retryable: true },
        );
      }
      const status: Check = {
        name: `${o.name}.exit`,
        verdict: out.code === 0 ? 'pass' : 'fail',
        observed: out.code,
        threshold: 0,
        query,
        reason: out.code === 0 ? 'exited 0' : 'exited 1 (the check failed)',
        ...(pool ? { pool: pool.name } : {}),
      };
      const checks = [status];
      if (t) {
        const last = out.stdout.trim().split('\n').pop()?.trim() ?? '';
        const value = DECIMAL.test(last) ? Number(last) : null;
        const c = thresholdCheck(`${o.name}.value`, value, t, { query });
        checks.push(value === null ? { ...c, reason: 'stdout has no number on its last line' } : c);
      }
      return resultOf(checks);
    },
  } satisfies Verifier;
}
