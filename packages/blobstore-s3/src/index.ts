export type { S3Traffic } from './client.js';
export { type S3BlobStoreOptions, type S3Credentials, s3Defaults } from './options.js';
export { type S3BlobStore, s3BlobStore } from './store.js';
