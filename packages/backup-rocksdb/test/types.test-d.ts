import type { BackupInfo, BackupProvider, BackupVerification, PruneResult } from '@codegraph/release-core';
import { expectTypeOf, test } from 'vitest';
import {
  type BlobStore,
  type CopiesVerification,
  localBlobStore,
  type MirrorReport,
  mirroredBlobStore,
  planRetention,
  type RetentionPlan,
  type RocksdbRestoreResult,
  rocksdbBackup,
  type SnapshotSource,
  stoppedDatabase,
} from '../src/index.js';

test('rocksdbBackup is a BackupProvider with prune and bundles', () => {
  const backup = rocksdbBackup({ repository: '/backups', db: '/data/rocksdb' });
  expectTypeOf(backup).toMatchTypeOf<BackupProvider>();
  expectTypeOf(backup.list()).resolves.toEqualTypeOf<BackupInfo[]>();
  expectTypeOf(backup.verify('id', { level: 'scan' })).resolves.toMatchTypeOf<BackupVerification>();
  expectTypeOf(backup.verify('id')).resolves.toEqualTypeOf<CopiesVerification>();
  expectTypeOf(backup.restore({ id: 'x' })).resolves.toEqualTypeOf<RocksdbRestoreResult>();
  expectTypeOf(backup.prune({ keepLast: 3 })).resolves.toEqualTypeOf<PruneResult>();
  // @ts-expect-error: the level is one of presence, checksum, scan
  void backup.verify('id', { level: 'deep' });
  // @ts-expect-error: the repository and the database are required
  rocksdbBackup({ db: '/data/rocksdb' });
});

test('stores and sources are plain interfaces', () => {
  expectTypeOf(localBlobStore('/backups')).toEqualTypeOf<BlobStore>();
  const mirror = mirroredBlobStore(localBlobStore('/backups'), localBlobStore('/mnt/offsite'));
  expectTypeOf(mirror).toMatchTypeOf<BlobStore>();
  expectTypeOf(mirror.settled()).resolves.toEqualTypeOf<MirrorReport>();
  // @ts-expect-error: a private document is a flag, not a mode
  void localBlobStore('/b').writeDoc('keys/k', 'x', { private: 0o600 });
  expectTypeOf(stoppedDatabase()).toEqualTypeOf<SnapshotSource>();
  expectTypeOf(planRetention([], { maxAgeMs: 1 })).toEqualTypeOf<RetentionPlan>();
});
