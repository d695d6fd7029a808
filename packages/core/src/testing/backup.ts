import { afterEach, describe, expect, it } from 'vitest';
import type { BackupProvider } from '../backup/types.js';
import { ReleaseError } from '../errors.js';

/** What {@link testBackupProvider} needs for one test: a provider over fresh data, and ways to touch it. */
export interface BackupProviderFixture {
  /** The provider under test, over data and a repository of its own. */
  provider: BackupProvider;
  /** A comparable picture of the live data (a scan, a listing with hashes). */
  snapshot(): Promise<unknown>;
  /** Changes the live data so that {@link BackupProviderFixture.snapshot} differs. */
  mutate(): Promise<void>;
  /** Damages the stored backup `id` (flips a byte, truncates a file) so that verification must fail. */
  corrupt(id: string): Promise<void>;
  /** Removes whatever the fixture made (data, repository, processes). Runs even when a test fails. */
  cleanup?(): Promise<void>;
}

/** Options of {@link testBackupProvider}. */
export interface BackupProviderSuiteOptions {
  /** Shown in the describe block. @default 'BackupProvider' */
  name?: string;
  /** Makes a fresh fixture; called once per test. */
  create(): BackupProviderFixture | Promise<BackupProviderFixture>;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ReleaseError) return err.code;
    throw err;
  }
  throw new Error('expected the call to fail with a ReleaseError');
}

/**
 * The conformance suite every {@link BackupProvider} passes: create → list → verify ok → restore brings the
 * data back; an unknown id is `CG_BACKUP_NOT_FOUND`; a corrupted backup does not verify.
 *
 * @example
 * ```ts
 * import { testBackupProvider } from '@codegraph/release-core/testing'
 *
 * testBackupProvider({
 *   name: 'tarball backups',
 *   async create() {
 *     const dir = await mkdtemp(join(tmpdir(), 'data-'))
 *     return { provider: tarballBackup({ dir }), snapshot, mutate, corrupt, cleanup: () => rm(dir, { recursive: true }) }
 *   },
 * })
 * ```
 */
export function testBackupProvider(options: BackupProviderSuiteOptions): void {
  const fixtures: BackupProviderFixture[] = [];
  const fresh = async (): Promise<BackupProviderFixture> => {
    const fixture = await options.create();
    fixtures.push(fixture);
    return fixture;
  };

  describe(`${options.name ?? 'BackupProvider'} conformance`, () => {
    afterEach(async () => {
      for (const f of fixtures.splice(0)) await f.cleanup?.();
    });

    it('creates a backup that list() shows with its reason, version and labels', async () => {
      const { provider } = await fresh();
      expect(typeof provider.name).toBe('string');
      const info = await provider.create({
        reason: 'pre-release',
        version: 'v1.2.3',
        labels: { run: 'r-1' },
      });
      expect(info).toMatchObject({ reason: 'pre-release', version: 'v1.2.3', labels: { run: 'r-1' } });
      expect(Number.isNaN(Date.parse(info.createdAt))).toBe(false);
      expect(info.files).toBeGreaterThan(0);
      const listed = await provider.list();
      expect(listed.map((b) => b.id)).toContain(info.id);
    });

    it('verifies a fresh backup as ok', async () => {
      const { provider } = await fresh();
      const info = await provider.create({ reason: 'manual' });
      const result = await provider.verify(info.id);
      expect(result).toMatchObject({ id: info.id, ok: true, problems: [] });
    });

    it('restores the chosen backup: the data is what it was when the backup was taken', async () => {
      const { provider, snapshot, mutate } = await fresh();
      const before = await snapshot();
      const info = await provider.create({ reason: 'pre-rollback' });
      await mutate();
      expect(await snapshot()).not.toEqual(before);
      const result = await provider.restore({ id: info.id });
      expect(result.id).toBe(info.id);
      expect(await snapshot()).toEqual(before);
    });

    it('answers CG_BACKUP_NOT_FOUND for an unknown id', async () => {
      const { provider } = await fresh();
      await provider.create({ reason: 'manual' });
      expect(await codeOf(provider.verify('no-such-backup'))).toBe('CG_BACKUP_NOT_FOUND');
      expect(await codeOf(provider.restore({ id: 'no-such-backup' }))).toBe('CG_BACKUP_NOT_FOUND');
    });

    it('does not verify a corrupted backup, and names the damaged file', async () => {
      const { provider, corrupt } = await fresh();
      const info = await provider.create({ reason: 'manual' });
      await corrupt(info.id);
      const result = await provider.verify(info.id, { level: 'checksum' });
      expect(result.ok).toBe(false);
      expect(result.problems.length).toBeGreaterThan(0);
      for (const p of result.problems) expect(p.path).not.toBe('');
    });
  });
}
