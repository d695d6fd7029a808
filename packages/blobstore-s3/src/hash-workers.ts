import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

// SHA-256 runs on the thread that calls update(). A backup hashes every new file before it uploads it (the
// content address), so that pass runs on worker threads, leaving the main thread to the HTTP streams.
// One job hashes one whole file (and each of its parts) with plain synchronous reads: one buffer per worker.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
let buf = Buffer.alloc(0);
parentPort.on('message', (job) => {
  let fd;
  try {
    if (buf.length !== job.chunkSize) buf = Buffer.allocUnsafe(job.chunkSize);
    const whole = createHash('sha256');
    const parts = [];
    let part = createHash('sha256');
    let inPart = 0;
    let size = 0;
    fd = fs.openSync(job.path, 'r');
    for (;;) {
      if (job.abort && Atomics.load(job.abort, 0) !== 0) throw Object.assign(new Error('aborted'), { code: 'ABORT_ERR' });
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      let chunk = buf.subarray(0, n);
      whole.update(chunk);
      size += n;
      if (!job.multipart) continue;
      while (chunk.length > 0) {
        const take = Math.min(chunk.length, job.partSize - inPart);
        part.update(chunk.subarray(0, take));
        inPart += take;
        chunk = chunk.subarray(take);
        if (inPart === job.partSize) { parts.push(part.digest('hex')); part = createHash('sha256'); inPart = 0; }
      }
    }
    if (job.multipart && inPart > 0) parts.push(part.digest('hex'));
    parentPort.postMessage({ id: job.id, sha256: whole.digest('hex'), size, parts });
  } catch (err) {
    parentPort.postMessage({ id: job.id, error: String(err && err.message), code: err && err.code });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
});
`;

/** One file to hash. */
export interface HashJob {
  path: string;
  chunkSize: number;
  partSize: number;
  multipart: boolean;
}

interface Reply {
  id: number;
  sha256?: string;
  size?: number;
  parts?: string[];
  error?: string;
  code?: string;
}
type Result = { sha256: string; size: number; parts: string[] };
type Pending = { resolve: (r: Result) => void; reject: (e: Error) => void };
type Queued = { message: HashJob & { id: number; abort?: Int32Array | undefined }; pending: Pending };

const idle: Worker[] = [];
const queue: Queued[] = [];
const pending = new Map<number, Pending>();
const busy = new Map<Worker, number>();
let workers = 0;
let nextId = 1;
const maxWorkers = Math.max(1, Math.min(2, availableParallelism()));

function dispatch(worker: Worker, q: Queued): void {
  worker.ref();
  pending.set(q.message.id, q.pending);
  busy.set(worker, q.message.id);
  worker.postMessage(q.message);
}

function spawnWorker(): Worker {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  worker.on('message', (reply: Reply) => {
    const p = pending.get(reply.id);
    pending.delete(reply.id);
    busy.delete(worker);
    const next = queue.shift();
    if (next) dispatch(worker, next);
    else {
      worker.unref(); // an idle worker never keeps the process alive
      idle.push(worker);
    }
    if (!p) return;
    if (reply.error !== undefined) p.reject(Object.assign(new Error(reply.error), { code: reply.code }));
    else p.resolve({ sha256: reply.sha256 ?? '', size: reply.size ?? 0, parts: reply.parts ?? [] });
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

/** Hashes a whole file (and its parts) on a worker thread. */
export function hashOnWorker(job: HashJob, signal?: AbortSignal): Promise<Result> {
  const abort = signal ? new Int32Array(new SharedArrayBuffer(4)) : undefined;
  const onAbort = () => abort && Atomics.store(abort, 0, 1);
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();
  return new Promise<Result>((resolve, reject) => {
    const q: Queued = { message: { ...job, id: nextId++, abort }, pending: { resolve, reject } };
    let worker = idle.pop();
    if (!worker && workers < maxWorkers) {
      workers++;
      worker = spawnWorker();
    }
    if (worker) dispatch(worker, q);
    else queue.push(q);
  }).finally(() => signal?.removeEventListener('abort', onAbort));
}
