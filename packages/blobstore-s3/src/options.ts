import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '@codegraph/release-core';
import { ConfigInvalidError, silentLogger } from '@codegraph/release-core';

/**
 * Static S3 credentials. Prefer the standard AWS chain (environment, shared config and credentials files,
 * SSO, web identity, ECS/EC2 roles): leave `credentials` out.
 *
 * @example
 * ```ts
 * const credentials: S3Credentials = { accessKeyId: process.env.S3_KEY!, secretAccessKey: process.env.S3_SECRET! }
 * ```
 */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/**
 * Options of {@link s3BlobStore}. Every default is written here once.
 *
 * @example
 * ```ts
 * const options: S3BlobStoreOptions = {
 *   bucket: 'codegraph-backups',
 *   prefix: 'production/',
 *   endpoint: 'https://s3.eu-central-1.example.net',
 *   region: 'eu-central-1',
 * }
 * ```
 */
export interface S3BlobStoreOptions {
  /** The bucket (it must exist). */
  bucket: string;
  /** Key prefix of the repository inside the bucket; several repositories can share a bucket. @default '' */
  prefix?: string;
  /** A custom endpoint (Ceph, Swift, MinIO, GCS interoperability...); no user or password in the URL. @default AWS S3 */
  endpoint?: string;
  /** @default process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1' */
  region?: string;
  /** Path-style addressing (`endpoint/bucket/key`). @default true with a custom endpoint, false on AWS */
  forcePathStyle?: boolean;
  /** Static credentials; never logged. @default the standard AWS credential chain */
  credentials?: S3Credentials;
  /**
   * Files at least this large are uploaded in parts, each read straight from disk. Smaller files go up in one
   * PUT: one request and one object for the server, no multipart manifest to assemble on read-back.
   * @default 134217728 (128 MiB)
   */
  multipartThreshold?: number;
  /** Part size of multipart uploads, at least 5 MiB (raised so a file needs at most 10,000 parts). @default 16777216 (16 MiB) */
  partSize?: number;
  /** Parts of one file uploaded at once (streamed from the file, never buffered whole). @default 4 */
  queueSize?: number;
  /** Keep-alive connections to the endpoint. @default 32 */
  maxSockets?: number;
  /** Attempts of a request that failed in a retryable way (network, 5xx, throttling). @default 4 */
  attempts?: number;
  /** Deadline of one request without progress, in milliseconds. @default 120000 */
  requestTimeoutMs?: number;
  /** How long a repository lease lasts without a refresh, in milliseconds (refreshed every third of it). @default 60000 */
  leaseTtlMs?: number;
  /** How long a new lease waits before it reads itself back, in milliseconds. @default 1000 */
  leaseSettleMs?: number;
  /** Logger for retries and lease changes (never credentials). @default silentLogger */
  logger?: Logger;
  /** A client of your own (its checksum and retry settings are yours; the store's read-back still applies). @default built from the options above */
  client?: S3Client;
}

/** Options after defaults and checks. */
export interface ResolvedS3Options {
  bucket: string;
  prefix: string;
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  credentials: S3Credentials | undefined;
  multipartThreshold: number;
  partSize: number;
  queueSize: number;
  maxSockets: number;
  attempts: number;
  requestTimeoutMs: number;
  leaseTtlMs: number;
  leaseSettleMs: number;
  logger: Logger;
  client: S3Client | undefined;
}

const MIB = 1024 * 1024;
/** S3's smallest part (every part but the last). */
export const MIN_PART_SIZE = 5 * MIB;

/**
 * The defaults of {@link S3BlobStoreOptions}, in one place.
 *
 * @example
 * ```ts
 * s3BlobStore({ bucket: 'codegraph-backups', partSize: s3Defaults.partSize * 2 })
 * ```
 */
export const s3Defaults = {
  prefix: '',
  region: 'us-east-1',
  multipartThreshold: 128 * MIB,
  partSize: 16 * MIB,
  queueSize: 4,
  maxSockets: 32,
  attempts: 4,
  requestTimeoutMs: 120_000,
  leaseTtlMs: 60_000,
  leaseSettleMs: 1_000,
} as const;

// Bucket names as S3 accepts them (3-63 lowercase letters, digits, dots, hyphens).
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX = /^([A-Za-z0-9._-]+\/)*$/;

function invalid(message: string): ConfigInvalidError {
  return new ConfigInvalidError(`s3BlobStore: ${message}`, { plugin: 'blobstore-s3' });
}

function int(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw invalid(`${name} must be a whole number from ${min} to ${max}, not ${String(value)}`);
  }
  return v;
}

/** Applies defaults, and rejects bad options before any request is made. Secrets are never echoed. */
export function resolveS3Options(options: S3BlobStoreOptions): ResolvedS3Options {
  if (!options || typeof options !== 'object') throw invalid('options are required ({ bucket })');
  const { bucket } = options;
  if (typeof bucket !== 'string' || !BUCKET.test(bucket) || bucket.includes('..')) {
    throw invalid(`bucket must be an S3 bucket name, not ${JSON.stringify(String(bucket)).slice(0, 80)}`);
  }
  const prefix = options.prefix ?? s3Defaults.prefix;
  if (typeof prefix !== 'string' || !PREFIX.test(prefix) || prefix.split('/').some((p) => p === '..')) {
    throw invalid('prefix must be empty or path segments ending in "/" (e.g. "production/")');
  }
  let endpoint: string | undefined;
  if (options.endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(options.endpoint);
    } catch {
      throw invalid('endpoint must be an http(s) URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw invalid('endpoint must be an http(s) URL');
    // A key in the URL would end up in messages and logs: refuse it without repeating it.
    if (url.username !== '' || url.password !== '') {
      throw invalid('endpoint must not carry credentials; pass credentials or use the AWS credential chain');
    }
    endpoint = url.origin + url.pathname.replace(/\/+$/, '');
  }
  const region =
    options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? s3Defaults.region;
  if (typeof region !== 'string' || !/^[a-z0-9-]{1,32}$/.test(region))
    throw invalid('region must be a region name');
  const c = options.credentials;
  if (c !== undefined) {
    const ok =
      c &&
      typeof c === 'object' &&
      typeof c.accessKeyId === 'string' &&
      c.accessKeyId !== '' &&
      typeof c.secretAccessKey === 'string' &&
      c.secretAccessKey !== '' &&
      (c.sessionToken === undefined || typeof c.sessionToken === 'string');
    if (!ok) throw invalid('credentials need accessKeyId and secretAccessKey (strings)');
  }
  if (options.forcePathStyle !== undefined && typeof options.forcePathStyle !== 'boolean') {
    throw invalid('forcePathStyle must be true or false');
  }
  const partSize = int('partSize', options.partSize, s3Defaults.partSize, MIN_PART_SIZE, 512 * MIB);
  const leaseTtlMs = int('leaseTtlMs', options.leaseTtlMs, s3Defaults.leaseTtlMs, 3_000, 3_600_000);
  return {
    bucket,
    prefix,
    endpoint,
    region,
    forcePathStyle: options.forcePathStyle ?? endpoint !== undefined,
    credentials: c,
    multipartThreshold: int(
      'multipartThreshold',
      options.multipartThreshold,
      s3Defaults.multipartThreshold,
      MIN_PART_SIZE,
      5 * 1024 * MIB,
    ),
    partSize,
    queueSize: int('queueSize', options.queueSize, s3Defaults.queueSize, 1, 16),
    maxSockets: int('maxSockets', options.maxSockets, s3Defaults.maxSockets, 1, 256),
    attempts: int('attempts', options.attempts, s3Defaults.attempts, 1, 10),
    requestTimeoutMs: int(
      'requestTimeoutMs',
      options.requestTimeoutMs,
      s3Defaults.requestTimeoutMs,
      1_000,
      3_600_000,
    ),
    leaseTtlMs,
    leaseSettleMs: int('leaseSettleMs', options.leaseSettleMs, s3Defaults.leaseSettleMs, 50, leaseTtlMs / 3),
    logger: options.logger ?? silentLogger,
    client: options.client,
  };
}
