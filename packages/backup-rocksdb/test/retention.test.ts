import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RetentionPolicy } from '@codegraph/release-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { planRetention, type RetentionCandidate, rocksdbBackup } from '../src/index.js';
import { fillDatabase, flipByte, ldbPut, requireTools, scan, tempDirs } from './helpers.js';

const DAY = 24 * 3600_000;
const day = (n: number) => new Date(Date.UTC(2026, 10, 1) + n * DAY).toISOString();

// Daily backups b01..b10 taken on days 1..10; `v` marks those whose last verification passed,
// `x` those whose last verification failed.
const history = (marks: string): RetentionCandidate[] =>
  Array.from({ length: 10 }, (_, i) => ({
    id: `b${String(i + 1).padStart(2, '0')}`,
    createdAt: day(i + 1),
    ...(marks[i] === 'v' ? { verified: true } : marks[i] === 'x' ? { verified: false } : {}),
  }));

const golden: Array<{ rule: string; marks: string; policy: RetentionPolicy; keep: string }> = [
  { rule: 'keeps the newest N', marks: '..........', policy: { keepLast: 3 }, keep: 'b10 b09 b08' },
  {
    rule: 'keeps everything within max age of the newest',
    marks: '..........',
    policy: { maxAgeMs: 2 * DAY },
    keep: 'b10 b09 b08',
  },
  {
    rule: 'max age is inclusive at the boundary',
    marks: '..........',
    policy: { maxAgeMs: 9 * DAY },
    keep: 'b10 b09 b08 b07 b06 b05 b04 b03 b02 b01',
  },
  {
    rule: 'is a union of both rules (age wins)',
    marks: '..........',
    policy: { keepLast: 2, maxAgeMs: 4 * DAY },
    keep: 'b10 b09 b08 b07 b06',
  },
  {
    rule: 'is a union of both rules (count wins)',
    marks: '..........',
    policy: { keepLast: 6, maxAgeMs: 1 * DAY },
    keep: 'b10 b09 b08 b07 b06 b05',
  },
  {
    rule: 'never deletes the last verified backup',
    marks: '...v......',
    policy: { keepLast: 2 },
    keep: 'b10 b09 b04',
  },
  {
    rule: 'protects only the newest verified one',
    marks: 'v..v......',
    policy: { keepLast: 2 },
    keep: 'b10 b09 b04',
  },
  {
    rule: 'a failed verification does not protect',
    marks: '...v....xx',
    policy: { keepLast: 1 },
    keep: 'b10 b04',
  },
  {
    rule: 'the last verified backup may also be kept by age',
    marks: '........v.',
    policy: { maxAgeMs: 3 * DAY },
    keep: 'b10 b09 b08 b07',
  },
  {
    rule: 'a 30-day policy keeps all of ten daily backups',
    marks: '..........',
    policy: { keepLast: 7, maxAgeMs: 30 * DAY },
    keep: 'b10 b09 b08 b07 b06 b05 b04 b03 b02 b01',
  },
];

describe('retention: a union policy (golden table)', () => {
  it.each(golden)('$rule: $policy over $marks keeps $keep', ({ marks, policy, keep }) => {
    const plan = planRetention(history(marks), policy);
    expect(plan.keep.join(' ')).toBe(keep);
    const all = history(marks).map((b) => b.id);
    expect([...plan.keep, ...plan.remove].sort()).toEqual(all);
  });

  it('says why each backup is kept', () => {
    const plan = planRetention(history('...v......'), { keepLast: 1, maxAgeMs: DAY });
    expect(plan.reasons).toEqual({ b10: ['keep-last', 'max-age'], b09: ['max-age'], b04: ['last-verified'] });
  });

  it('refuses a policy that says nothing or makes no sense', () => {
    expect(() => planRetention(history('..........'), {})).toThrow(/keepLast, maxAgeMs/);
    expect(() => planRetention(history('..........'), { keepLast: 0 })).toThrow(/keepLast/);
    expect(() => planRetention(history('..........'), { keepLast: 1.5 })).toThrow(/keepLast/);
    expect(() => planRetention(history('..........'), { maxAgeMs: -1 })).toThrow(/maxAgeMs/);
  });
});

describe('pruning a repository', () => {
  const tmp = tempDirs();

  beforeAll(async () => {
    await requireTools('ldb', 'db_bench');
  });

  it('removes backups outside the policy, collects their blobs, and keeps the others restorable', async () => {
    const root = await tmp('prune');
    const db = join(root, 'rocksdb');
    const repository = join(root, 'backups');
    let clock = Date.parse('2026-11-01T03:00:00Z');
    const backup = rocksdbBackup({ repository, db, now: () => new Date(clock) });
    await fillDatabase(db, { num: 6_000, seed: 11 });
    const ids: string[] = [];
    const scans: string[] = [];
    for (let i = 0; i < 5; i++) {
      await fillDatabase(db, { num: 6_000, writes: 1_500, seed: 20 + i });
      await ldbPut(db, { day: `day ${i}` });
      scans.push(await scan(db));
      ids.push((await backup.create({ reason: 'scheduled' })).id);
      clock += DAY;
    }
    // The second backup is the last one verified; the newest two fail verification.
    expect((await backup.verify(ids[1]!)).ok).toBe(true);
    for (const id of ids.slice(3)) {
      const manifest = JSON.parse(
        await readFile(join(repository, 'backups', id, 'manifest.json'), 'utf8'),
      ) as {
        files: Array<{ path: string; sha256: string }>;
      };
      const current = manifest.files.find((f) => f.path === 'rocksdb/CURRENT')!;
      const blob = join(repository, 'blobs', 'sha256', current.sha256.slice(0, 2), current.sha256);
      await flipByte(blob, 0);
      expect((await backup.verify(id)).ok).toBe(false);
    }
    // An interrupted write left a temporary file behind.
    await writeFile(join(repository, 'tmp', 'blob-leftover'), 'partial');
    const blobsBefore = (await readdir(join(repository, 'blobs', 'sha256'), { recursive: true })).length;

    const result = await backup.prune({ keepLast: 2 });
    expect(result.kept).toEqual([ids[4], ids[3], ids[1]]);
    expect(result.removed).toEqual([ids[2], ids[0]]);
    expect(result.freedBytes).toBeGreaterThan(0);
    expect((await backup.list()).map((b) => b.id)).toEqual([ids[4], ids[3], ids[1]]);
    expect(await readdir(join(repository, 'tmp'))).toEqual([]);
    expect((await readdir(join(repository, 'blobs', 'sha256'), { recursive: true })).length).toBeLessThan(
      blobsBefore,
    );

    // What is kept is whole: the last verified backup restores, and still verifies.
    expect((await backup.verify(ids[1]!)).ok).toBe(true);
    await backup.restore({ id: ids[1]! });
    expect(await scan(db)).toBe(scans[1]);
  });
});
