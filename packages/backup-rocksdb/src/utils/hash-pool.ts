import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

// SHA-256 runs on the thread that calls update(), so hashing on the main thread caps a backup at one core.
// These workers each copy-and-hash (or hash) one whole file with plain synchronous reads and writes: one
// streaming pass per file, one file per worker, several files at once. Memory per worker is one buffer.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
let buf = Buffer.alloc(0);
let other = Buffer.alloc(0);
// Reads exactly n bytes of fd into b (fewer only at its end).
const readFull = (fd, b, n) => {
  let got = 0;
  while (got < n) {
    const r = fs.readSync(fd, b, got, n - got, null);
    if (r === 0) break;
    got += r;
  }
  return got;
};
parentPort.on('message', (job) => {
  let input, output, cmp;
  try {
    if (buf.length !== job.chunkSize) buf = Buffer.allocUnsafe(job.chunkSize);
    const hash = createHash('sha256');
    input = fs.openSync(job.src, 'r');
    if (job.dst) output = fs.openSync(job.dst, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, job.mode);
    // With cmp, the file is also compared byte for byte with another (a stored blob), in the same pass.
    let same = job.cmp !== undefined;
    if (same) {
      try { cmp = fs.openSync(job.cmp, 'r'); } catch { same = false; }
      if (other.length !== job.chunkSize) other = Buffer.allocUnsafe(job.chunkSize);
    }
    let size = 0;
    for (;;) {
      if (job.abort && Atomics.load(job.abort, 0) !== 0) throw Object.assign(new Error('aborted'), { code: 'ABORT_ERR' });
      const n = readFull(input, buf, buf.length);
      if (same && (readFull(cmp, other, n) !== n || buf.compare(other, 0, n, 0, n) !== 0)) same = false;
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      size += n;
      if (output !== undefined) for (let off = 0; off < n; ) off += fs.writeSync(output, buf, off, n - off);
    }
    if (same && fs.readSync(cmp, other, 0, 1, null) !== 0) same = false;
    if (output !== undefined && job.fsync) fs.fsyncSync(output);
    parentPort.postMessage({ id: job.id, sha256: hash.digest('hex'), size, same });
  } catch (err) {
    parentPort.postMessage({ id: job.id, error: String(err && err.message), code: err && err.code, path: err && err.path });
  } finally {
    if (input !== undefined) fs.closeSync(input);
    if (output !== undefined) fs.closeSync(output);
    if (cmp !== undefined) fs.closeSync(cmp);
  }
});
`;

interface Job {
  id: number;
  src: string;
  dst?: string | undefined;
  mode?: number | undefined;
  fsync?: boolean | undefined;
  /** A file compared with `src` byte for byte in the same pass (the reply's `same`). */
  cmp?: string | undefined;
  chunkSize: number;
  abort?: Int32Array | undefined;
}
interface Reply {
  id: number;
  sha256?: string;
  size?: number;
  same?: boolean;
  error?: string;
  code?: string;
  path?: string;
}
/** A file job's outcome; `same` answers a comparison asked with `cmp`. */
export interface FileJobResult {
  sha256: string;
  size: number;
  same: boolean;
}
type Pending = { resolve: (r: FileJobResult) => void; reject: (e: Error) => void };

const idle: Worker[] = [];
const queue: Array<{ job: Job; pending: Pending }> = [];
const pending = new Map<number, Pending>();
const busy = new Map<Worker, number>();
let workers = 0;
let nextId = 1;
const maxWorkers = Math.max(1, Math.min(8, availableParallelism()));

function spawnWorker(): Worker {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  worker.unref(); // idle workers never keep a process alive
  worker.on('message', (reply: Reply) => {
    const p = pending.get(reply.id);
    pending.delete(reply.id);
    busy.delete(worker);
    release(worker);
    if (!p) return;
    if (reply.error !== undefined) {
      p.reject(Object.assign(new Error(reply.error), { code: reply.code, path: reply.path }));
    } else p.resolve({ sha256: reply.sha256 ?? '', size: reply.size ?? 0, same: reply.same === true });
  });
  worker.on('error', (err) => {
    workers--;
    const id = busy.get(worker);
    busy.delete(worker);
    const p = id === undefined ? undefined : pending.get(id);
    if (id !== undefined) pending.delete(id);
    p?.reject(err);
  });
  return worker;
}

function release(worker: Worker): void {
  const next = queue.shift();
  if (next) {
    pending.set(next.job.id, next.pending);
    busy.set(worker, next.job.id);
    worker.postMessage(next.job);
  } else {
    worker.unref();
    idle.push(worker);
  }
}

/** Runs one copy-and-hash (with `dst`) or hash (without) of a whole file on a worker thread. */
export function runFileJob(job: Omit<Job, 'id' | 'abort'>, signal?: AbortSignal): Promise<FileJobResult> {
  const abort = signal ? new Int32Array(new SharedArrayBuffer(4)) : undefined;
  const onAbort = () => abort && Atomics.store(abort, 0, 1);
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();
  const full: Job = { ...job, id: nextId++, abort };
  return new Promise<FileJobResult>((resolve, reject) => {
    const p: Pending = { resolve, reject };
    let worker = idle.pop();
    if (!worker && workers < maxWorkers) {
      workers++;
      worker = spawnWorker();
    }
    if (worker) {
      worker.ref(); // busy workers keep the process alive until their reply
      pending.set(full.id, p);
      busy.set(worker, full.id);
      worker.postMessage(full);
    } else queue.push({ job: full, pending: p });
  }).finally(() => signal?.removeEventListener('abort', onAbort));
}
