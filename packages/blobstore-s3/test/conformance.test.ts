import { randomBytes } from 'node:crypto';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { testBlobStore } from '@codegraph/backup-rocksdb/testing';
import { afterAll, beforeAll } from 'vitest';
import { s3BlobStore } from '../src/index.js';
import { type Swift, startSwift } from './swift.js';

// The BlobStore conformance suite the local store passes, run against a real S3 API (Swift's s3api, which
// checks SigV4 signatures): one server for the file, a fresh bucket for each test.
let swift: Swift;
beforeAll(async () => {
  swift = await startSwift();
}, 150_000);
afterAll(async () => {
  await swift?.stop();
});

const PREFIX = 'repo/';
const objectKey = (sha256: string) => `${PREFIX}blobs/sha256/${sha256.slice(0, 2)}/${sha256}`;

testBlobStore({
  name: 's3BlobStore on Swift',
  async create() {
    const bucket = await swift.bucket();
    const store = s3BlobStore({
      bucket,
      prefix: PREFIX,
      endpoint: swift.endpoint,
      region: swift.region,
      credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey },
      leaseSettleMs: 200,
    });
    return {
      store,
      // Bit rot in the bucket: the object keeps its name (and size) but holds other bytes, written behind the
      // store's back with the plain SDK.
      async damage(sha256) {
        const Key = objectKey(sha256);
        const head = await swift.client.send(new HeadObjectCommand({ Bucket: bucket, Key }));
        const body = randomBytes(head.ContentLength ?? 1);
        await swift.client.send(
          new PutObjectCommand({ Bucket: bucket, Key, Body: body, ContentLength: body.length }),
        );
      },
      cleanup: async () => store.close(),
    };
  },
});
