import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  type PutObjectCommandOutput,
} from '@aws-sdk/client-s3';
import type { BuildMiddleware } from '@smithy/types';
import { isNotFound, type S3Connection, s3Error, withRetry } from './client.js';
import { type PartedDigest, uploadParts } from './multipart.js';
import type { ResolvedS3Options } from './options.js';

/** Content and size of a byte stream. */
export interface Digest {
  sha256: string;
  size: number;
}

/** What the object helpers need. */
export interface Ctx {
  o: ResolvedS3Options;
  conn: S3Connection;
  /** `s3://bucket/` for messages. */
  url: string;
}

type Middleware = BuildMiddleware<PutObjectCommandInput, PutObjectCommandOutput>;

/**
 * Signs the body's SHA-256 instead of `UNSIGNED-PAYLOAD`: the server hashes what arrives and refuses a body
 * that differs (`BadDigest`), so a PUT can never store other bytes than the ones hashed locally.
 */
function signedPayload(sha256: string): Middleware {
  return (next) => async (args) => {
    const request = args.request as { headers?: Record<string, string> };
    if (request.headers) request.headers['x-amz-content-sha256'] = sha256;
    return next(args);
  };
}

/** The size of an object, or undefined when there is none. */
export async function headSize(c: Ctx, key: string, signal?: AbortSignal): Promise<number | undefined> {
  return withRetry(
    c.o,
    'HeadObject',
    c.url + key,
    async () => {
      try {
        const r = await c.conn.client.send(new HeadObjectCommand({ Bucket: c.o.bucket, Key: key }), {
          abortSignal: signal,
        });
        return r.ContentLength ?? 0;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    signal,
  );
}

export async function deleteObject(c: Ctx, key: string): Promise<void> {
  await withRetry(c.o, 'DeleteObject', c.url + key, async () => {
    try {
      await c.conn.client.send(new DeleteObjectCommand({ Bucket: c.o.bucket, Key: key }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  });
}

/** Writes a small object from memory, its SHA-256 signed (so checked by the server on arrival). */
export async function putSmall(c: Ctx, key: string, body: Uint8Array, signal?: AbortSignal): Promise<void> {
  const sha256 = createHash('sha256').update(body).digest('hex');
  await withRetry(
    c.o,
    'PutObject',
    c.url + key,
    async () => {
      const cmd = new PutObjectCommand({
        Bucket: c.o.bucket,
        Key: key,
        Body: body,
        ContentLength: body.byteLength,
      });
      cmd.middlewareStack.add(signedPayload(sha256), { step: 'build', name: 'codegraphSignedPayload' });
      await c.conn.client.send(cmd, { abortSignal: signal });
    },
    signal,
  );
}

/** Reads a small object into memory, or undefined when there is none. */
export async function getSmall(
  c: Ctx,
  key: string,
  signal?: AbortSignal,
): Promise<{ body: Uint8Array; lastModified: Date | undefined } | undefined> {
  return withRetry(
    c.o,
    'GetObject',
    c.url + key,
    async () => {
      try {
        const r = await c.conn.client.send(new GetObjectCommand({ Bucket: c.o.bucket, Key: key }), {
          abortSignal: signal,
        });
        const body = await r.Body?.transformToByteArray();
        c.conn.traffic.downloadedBytes += body?.byteLength ?? 0;
        return { body: body ?? new Uint8Array(), lastModified: r.LastModified };
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    signal,
  );
}

/**
 * Uploads a local file whose digest is known to `key`: one PUT with the SHA-256 signed, or, for a digest
 * with parts, a multipart upload whose every part is signed the same way. The server hashes what arrives and
 * refuses other bytes; a killed multipart upload leaves invisible parts that `cleanTemporary()` aborts.
 */
export async function uploadFile(
  c: Ctx,
  key: string,
  path: string,
  digest: PartedDigest | Digest,
  signal?: AbortSignal,
): Promise<void> {
  const { o } = c;
  if ('multipart' in digest && digest.multipart) {
    await uploadParts(c, key, path, digest, signal);
    return;
  }
  await withRetry(
    o,
    'PutObject',
    c.url + key,
    async () => {
      const cmd = new PutObjectCommand({
        Bucket: o.bucket,
        Key: key,
        Body: createReadStream(path),
        ContentLength: digest.size,
      });
      cmd.middlewareStack.add(signedPayload(digest.sha256), {
        step: 'build',
        name: 'codegraphSignedPayload',
      });
      await c.conn.client.send(cmd, { abortSignal: signal });
    },
    signal,
  );
}

/**
 * Streams an object's bytes. A connection lost mid-way is resumed with a `Range` request from the byte
 * reached (the object is content-addressed, so it cannot have changed underneath).
 */
export async function* readObject(
  c: Ctx,
  key: string,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array, void, undefined> {
  let offset = 0;
  for (let failures = 0; ; ) {
    const body = await withRetry(
      c.o,
      'GetObject',
      c.url + key,
      async () => {
        const r = await c.conn.client.send(
          new GetObjectCommand({
            Bucket: c.o.bucket,
            Key: key,
            ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}),
          }),
          { abortSignal: signal },
        );
        return r.Body as Readable | undefined;
      },
      signal,
    );
    if (!body) return;
    try {
      for await (const chunk of body) {
        const bytes = chunk as Uint8Array;
        offset += bytes.byteLength;
        c.conn.traffic.downloadedBytes += bytes.byteLength;
        yield bytes;
      }
      return;
    } catch (err) {
      body.destroy();
      if (signal?.aborted || ++failures >= c.o.attempts) throw s3Error('GetObject', c.url + key, err);
      c.o.logger.warn('blobstore-s3: resuming a download', { object: c.url + key, offset });
    }
  }
}

/** Reads an object back and hashes it: the store's own check of what the bucket holds. */
export async function hashObject(c: Ctx, key: string, signal?: AbortSignal): Promise<Digest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of readObject(c, key, signal)) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Reads one byte range of an object and hashes it; `total` is the object's size from `Content-Range`. */
export async function hashRange(
  c: Ctx,
  key: string,
  start: number,
  end: number,
  signal?: AbortSignal,
): Promise<Digest & { total: number }> {
  return withRetry(
    c.o,
    'GetObject',
    `${c.url}${key} bytes ${start}-${end}`,
    async () => {
      const r = await c.conn.client.send(
        new GetObjectCommand({ Bucket: c.o.bucket, Key: key, Range: `bytes=${start}-${end}` }),
        { abortSignal: signal },
      );
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of (r.Body as Readable | undefined) ?? []) {
        hash.update(chunk as Uint8Array);
        size += (chunk as Uint8Array).byteLength;
      }
      c.conn.traffic.downloadedBytes += size;
      const total = Number(/\/(\d+)$/.exec(r.ContentRange ?? '')?.[1] ?? Number.NaN);
      return { sha256: hash.digest('hex'), size, total };
    },
    signal,
  );
}
