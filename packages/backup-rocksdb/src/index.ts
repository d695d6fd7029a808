export {
  type BlobIoOptions,
  type BlobStore,
  type BlobWrite,
  checkBlobName,
  checkDocKey,
  checkedBlob,
  type DocWriteOptions,
  missingBlob,
} from './blob-store.js';
export type { ImportLimits } from './bundle.js';
export { type LocalBlobStoreOptions, localBlobStore } from './local-store.js';
export type { BackupManifest, ManifestFile } from './manifest.js';
export {
  type MirroredBlobStore,
  type MirroredBlobStoreOptions,
  type MirrorReport,
  mirroredBlobStore,
} from './mirrored-store.js';
export type { BackupProgress, RocksdbBackupOptions } from './options.js';
export { type RocksdbBackup, type RocksdbRestoreResult, rocksdbBackup } from './provider.js';
export type { RestoredComponent } from './restore.js';
export {
  planRetention,
  type RetentionCandidate,
  type RetentionPlan,
  type RetentionRule,
} from './retention.js';
export {
  type AdminApiCheckpointOptions,
  adminApiCheckpoint,
  checkCheckpoint,
  consistentDirectory,
  type LdbCheckpointOptions,
  ldbCheckpoint,
  type Snapshot,
  type SnapshotContext,
  type SnapshotSource,
  stoppedDatabase,
} from './sources.js';
export { type LockHolder, lockHolder } from './utils/lock.js';
export type { CopiesVerification } from './verify.js';
