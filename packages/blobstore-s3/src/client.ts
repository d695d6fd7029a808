import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { BackupFailedError, ReleaseError } from '@codegraph/release-core';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { ResolvedS3Options } from './options.js';

/**
 * What the store counts, for benchmarks and tests.
 *
 * @example
 * ```ts
 * const { uploadedBytes, downloadedBytes, requests } = store.traffic()
 * ```
 */
export interface S3Traffic {
  /** Body bytes sent in PUT and UploadPart requests. */
  uploadedBytes: number;
  /** Body bytes received from GET requests. */
  downloadedBytes: number;
  /** Requests sent (each attempt counts). */
  requests: number;
}

/** The client the store talks through, and the server's clock as last seen (for lease expiry). */
export interface S3Connection {
  client: S3Client;
  /** `Date` of the last response, in ms, or undefined before the first. */
  serverNow(): number | undefined;
  traffic: S3Traffic;
  destroy(): void;
}

interface HttpResponseLike {
  statusCode?: number;
  headers?: Record<string, string | undefined>;
}

/**
 * Builds an S3 client with keep-alive sockets and checksums computed only when the API requires them:
 * custom endpoints (Swift, Ceph, older MinIO) often reject aws-chunked bodies, and the store reads every
 * blob back and hashes it itself anyway.
 */
export function connect(o: ResolvedS3Options): S3Connection {
  const traffic: S3Traffic = { uploadedBytes: 0, downloadedBytes: 0, requests: 0 };
  let serverDate: number | undefined;
  const agentOptions = { keepAlive: true, maxSockets: o.maxSockets, keepAliveMsecs: 10_000 };
  const httpAgent = new HttpAgent(agentOptions);
  const httpsAgent = new HttpsAgent(agentOptions);
  const client =
    o.client ??
    new S3Client({
      region: o.region,
      ...(o.endpoint ? { endpoint: o.endpoint } : {}),
      forcePathStyle: o.forcePathStyle,
      ...(o.credentials ? { credentials: { ...o.credentials } } : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Retries are the store's own: it re-opens a file body, which the SDK cannot rewind.
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({
        httpAgent,
        httpsAgent,
        connectionTimeout: 10_000,
        requestTimeout: o.requestTimeoutMs,
      }),
    });
  client.middlewareStack.add(
    (next) => async (args) => {
      traffic.requests++;
      const request = args.request as { headers?: Record<string, string> };
      const length = Number(request.headers?.['content-length'] ?? 0);
      if (Number.isFinite(length)) traffic.uploadedBytes += length;
      const result = await next(args);
      const response = result.response as HttpResponseLike;
      const date = response.headers?.date;
      if (date) {
        const t = Date.parse(date);
        if (!Number.isNaN(t)) serverDate = t;
      }
      return result;
    },
    { step: 'finalizeRequest', priority: 'low', name: 'codegraphTraffic' },
  );
  return {
    client,
    traffic,
    serverNow: () => serverDate,
    destroy() {
      if (!o.client) client.destroy();
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

interface SdkErrorLike {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string };
  $retryable?: unknown;
}

/** The HTTP status of an SDK error, when the server answered. */
export function statusOf(err: unknown): number | undefined {
  return (err as SdkErrorLike | undefined)?.$metadata?.httpStatusCode;
}

/** Whether the server said the object is not there. */
export function isNotFound(err: unknown): boolean {
  const e = err as SdkErrorLike | undefined;
  return statusOf(err) === 404 || e?.name === 'NotFound' || e?.name === 'NoSuchKey';
}

/** Network failures, timeouts, 5xx, throttling: worth another attempt. Refusals (4xx) are not. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ReleaseError) return err.retryable === true;
  const e = err as SdkErrorLike | undefined;
  if (e?.name === 'AbortError') return false;
  const status = statusOf(err);
  if (status === undefined) return true;
  return status >= 500 || status === 429 || e?.name === 'RequestTimeout' || e?.name === 'SlowDown';
}

const HINTS: Record<string, string> = {
  SignatureDoesNotMatch: 'the secret key was refused; check the credentials',
  InvalidAccessKeyId: 'the access key is unknown to the endpoint; check the credentials',
  AccessDenied: 'the credentials may not do this; check the bucket policy',
  Forbidden: 'the request was refused; check the credentials and the bucket policy',
  NoSuchBucket: 'create the bucket first, or fix the bucket name',
  BadDigest: 'the body did not match its SHA-256 on arrival; nothing was stored',
};

/**
 * A typed error for a failed S3 call, naming the operation and the object but never a credential, a
 * signature or a request header (the SDK's own error is reduced to its name, status and request id).
 */
export function s3Error(op: string, where: string, err: unknown): ReleaseError {
  if (err instanceof ReleaseError) return err;
  const e = err as SdkErrorLike | undefined;
  const status = statusOf(err);
  const byStatus: Record<number, string> = { 403: 'Forbidden', 404: 'NotFound' };
  const named = e?.name && e.name !== 'Error' && e.name !== 'Unknown' ? e.name : undefined;
  const name =
    named ??
    (status !== undefined ? byStatus[status] : undefined) ??
    e?.code ??
    (status ? 'Error' : 'NetworkError');
  const detail = status === undefined ? String(e?.message ?? err).slice(0, 200) : `HTTP ${status}`;
  const hint = HINTS[name];
  return new BackupFailedError(`S3 ${op} ${where} failed: ${name} (${detail})${hint ? `; ${hint}` : ''}`, {
    plugin: 'blobstore-s3',
    retryable: isRetryable(err),
    details: {
      operation: op,
      object: where,
      ...(status !== undefined ? { status } : {}),
      ...(e?.$metadata?.requestId ? { requestId: e.$metadata.requestId } : {}),
    },
  });
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Runs `fn` up to `attempts` times while it fails in a retryable way (exponential backoff with jitter). */
export async function withRetry<T>(
  o: Pick<ResolvedS3Options, 'attempts' | 'logger'>,
  op: string,
  where: string,
  fn: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (signal?.aborted) throw err;
      if (attempt >= o.attempts || !isRetryable(err)) throw s3Error(op, where, err);
      const delay = Math.min(5_000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);
      o.logger.warn('blobstore-s3: retrying', {
        operation: op,
        object: where,
        attempt,
        error: s3Error(op, where, err).message,
      });
      await sleep(delay, signal);
    }
  }
}
