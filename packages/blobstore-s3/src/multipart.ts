import { createReadStream } from 'node:fs';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  type UploadPartCommandInput,
  type UploadPartCommandOutput,
} from '@aws-sdk/client-s3';
import type { BuildMiddleware } from '@smithy/types';
import { withRetry } from './client.js';
import { hashOnWorker } from './hash-workers.js';
import { type Ctx, type Digest, hashObject, hashRange } from './objects.js';
import { MIN_PART_SIZE } from './options.js';

/** A file's digest with the SHA-256 of each `partSize` range (the parts it is uploaded in, or read back by). */
export interface PartedDigest extends Digest {
  partSize: number;
  parts: string[];
  /** Whether it goes up in parts (else one PUT). */
  multipart: boolean;
}

/** The part size for a file: the configured one, raised so no file needs more than 10,000 parts. */
export function partSizeFor(size: number, configured: number): number {
  return Math.max(configured, MIN_PART_SIZE, Math.ceil(size / 10_000));
}

/**
 * Hashes a file in one pass on a worker thread: the whole file (its content address) and each `partSize`
 * range, so every part can be sent with its SHA-256 signed, and every range read back and checked at once.
 */
export async function hashFileParts(
  path: string,
  options: { chunkSize: number; partSize: number; multipart: boolean; signal?: AbortSignal | undefined },
): Promise<PartedDigest> {
  const { signal, ...job } = options;
  try {
    const r = await hashOnWorker({ path, ...job, multipart: true }, signal);
    return { ...r, partSize: options.partSize, multipart: options.multipart };
  } catch (err) {
    if (signal?.aborted) throw signal.reason ?? err;
    throw err;
  }
}

function signed(sha256: string): BuildMiddleware<UploadPartCommandInput, UploadPartCommandOutput> {
  return (next) => async (args) => {
    const request = args.request as { headers?: Record<string, string> };
    if (request.headers) request.headers['x-amz-content-sha256'] = sha256;
    return next(args);
  };
}

/**
 * Uploads a file in parts read straight from disk (no part is buffered in memory), `queueSize` at a time,
 * each with its SHA-256 signed; a failure aborts the upload, so no parts are left behind.
 */
export async function uploadParts(
  c: Ctx,
  key: string,
  path: string,
  digest: PartedDigest,
  signal?: AbortSignal,
): Promise<void> {
  const { o } = c;
  const where = c.url + key;
  const created = await withRetry(
    o,
    'CreateMultipartUpload',
    where,
    () =>
      c.conn.client.send(new CreateMultipartUploadCommand({ Bucket: o.bucket, Key: key }), {
        abortSignal: signal,
      }),
    signal,
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error(`CreateMultipartUpload of ${where} returned no upload id`);
  try {
    const etags: string[] = new Array(digest.parts.length);
    let next = 0;
    const worker = async () => {
      while (next < digest.parts.length) {
        const i = next++;
        const start = i * digest.partSize;
        const length = Math.min(digest.partSize, digest.size - start);
        const out = await withRetry(
          o,
          'UploadPart',
          `${where} part ${i + 1}`,
          () => {
            const cmd = new UploadPartCommand({
              Bucket: o.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: i + 1,
              ContentLength: length,
              Body: createReadStream(path, { start, end: start + length - 1, highWaterMark: 1 << 20 }),
            });
            cmd.middlewareStack.add(signed(digest.parts[i] as string), {
              step: 'build',
              name: 'codegraphSignedPart',
            });
            return c.conn.client.send(cmd, { abortSignal: signal });
          },
          signal,
        );
        etags[i] = out.ETag ?? '';
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.queueSize, digest.parts.length) }, worker));
    await withRetry(
      o,
      'CompleteMultipartUpload',
      where,
      () =>
        c.conn.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: o.bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
          }),
          { abortSignal: signal },
        ),
      signal,
    );
  } catch (err) {
    await c.conn.client
      .send(new AbortMultipartUploadCommand({ Bucket: o.bucket, Key: key, UploadId: uploadId }))
      .catch(() => undefined);
    throw err;
  }
}

/**
 * Reads a stored object back, `queueSize` ranges at once, and checks each range's SHA-256 against the local
 * file's: every byte is compared through a hash, so the object is the file. Returns what differs, if anything.
 */
export async function readBackRanges(
  c: Ctx,
  key: string,
  digest: PartedDigest,
  signal?: AbortSignal,
): Promise<string | undefined> {
  if (digest.parts.length === 0) {
    const back = await hashObject(c, key, signal);
    return back.sha256 === digest.sha256 && back.size === digest.size
      ? undefined
      : `${back.size} bytes with sha256 ${back.sha256}`;
  }
  let problem: string | undefined;
  let next = 0;
  const worker = async () => {
    while (next < digest.parts.length && problem === undefined) {
      const i = next++;
      const start = i * digest.partSize;
      const end = Math.min(digest.size, start + digest.partSize) - 1;
      const got = await hashRange(c, key, start, end, signal);
      if (got.total !== digest.size) problem = `${got.total} bytes, expected ${digest.size}`;
      else if (got.size !== end - start + 1 || got.sha256 !== digest.parts[i]) {
        problem = `bytes ${start}-${end} differ (sha256 ${got.sha256})`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(c.o.queueSize, digest.parts.length) }, worker));
  return problem;
}
