import { execFile, spawn } from 'node:child_process';
import { AbortedError, BackupFailedError, ConfigInvalidError } from '@codegraph/release-core';

function notInstalled(command: string, cause: unknown): ConfigInvalidError {
  return new ConfigInvalidError(
    `${command} was not found; install RocksDB's tools (apt-get install rocksdb-tools) or pass its path`,
    { cause, plugin: 'backup-rocksdb' },
  );
}

function toolFailed(command: string, args: string[], output: string, cause: unknown): BackupFailedError {
  return new BackupFailedError(`${command} ${args.join(' ')} failed: ${output.trim()}`, {
    cause,
    plugin: 'backup-rocksdb',
  });
}

/** Runs a RocksDB tool whose output is small; a missing binary is a {@link ConfigInvalidError}. */
export function runTool(command: string, args: string[], signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { signal, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(notInstalled(command, err));
      reject(toolFailed(command, args, stderr || stdout || err.message, err));
    });
  });
}

/** Keeps the last `limit` bytes written to it. */
function tail(limit: number) {
  let kept = Buffer.alloc(0);
  return {
    push(chunk: Buffer) {
      kept = Buffer.concat([kept, chunk]);
      if (kept.length > limit) kept = kept.subarray(kept.length - limit);
    },
    text: () => kept.toString('utf8'),
  };
}

/**
 * Runs a RocksDB tool whose output can be of any size (`ldb scan`): stdout is read and discarded as it
 * comes, only the last 64 KiB of each stream are kept for the error message. Resolves with the number of
 * bytes the tool printed.
 */
export function streamTool(command: string, args: string[], signal?: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
    const out = tail(64 << 10);
    const err = tail(64 << 10);
    let printed = 0;
    let spawnError: unknown;
    child.stdout.on('data', (chunk: Buffer) => {
      printed += chunk.length;
      out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (e) => {
      spawnError = e;
    });
    child.on('close', (code, sig) => {
      if ((spawnError as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
        return reject(notInstalled(command, spawnError));
      }
      if (signal?.aborted)
        return reject(new AbortedError(`${command} was cancelled`, { cause: signal.reason }));
      if (code === 0 && !spawnError) return resolve(printed);
      const why = err.text() || out.text() || String(spawnError ?? `exit ${code ?? sig}`);
      reject(toolFailed(command, args, why, spawnError));
    });
  });
}
