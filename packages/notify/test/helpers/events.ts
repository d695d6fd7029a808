import type { ReleaseEvent, ReleaseEventOf } from '@codegraph/release-core';
import { sampleReleaseEvents } from '@codegraph/release-core/testing';

export const events = sampleReleaseEvents();

/** The sample event of a type (and predicate), failing loudly when the fixtures change. */
export function sample<T extends ReleaseEvent['type']>(
  type: T,
  where: (e: ReleaseEventOf<T>) => boolean = () => true,
): ReleaseEventOf<T> {
  const found = events.find((e): e is ReleaseEventOf<T> => e.type === type && where(e as ReleaseEventOf<T>));
  if (!found) throw new Error(`no sample ${type} event matches`);
  return found;
}

export const releaseStarted = sample('run.started', (e) => e.kind === 'release');
export const rollbackStarted = sample('run.started', (e) => e.kind === 'rollback');
export const rolledBack = sample('run.finished', (e) => e.status === 'rolled-back');
export const rollbackResolved = sample(
  'run.finished',
  (e) => e.kind === 'rollback' && e.status === 'succeeded',
);
export const promoted = sample('run.finished', (e) => e.kind === 'release' && e.status === 'succeeded');
export const releaseFailed = sample('run.finished', (e) => e.status === 'failed');
export const analysisFailed = sample('analysis.finished');
export const backupFailed = sample('backup.failed');
export const trafficShifted = sample('traffic.shifted');

/** The sample events that produce a notice by default (traffic shifts are opt-in). */
export const noticeEvents = [
  releaseStarted,
  analysisFailed,
  backupFailed,
  rolledBack,
  rollbackStarted,
  rollbackResolved,
  promoted,
  releaseFailed,
];

/** A rolled-back release whose texts are far over every service's limits. */
export function oversizedRollback(): ReleaseEventOf<'run.finished'> {
  const long = (n: number, unit = 'regression <p95> & errors ') =>
    unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
  const incident = rolledBack.incident!;
  return {
    ...rolledBack,
    runId: 'run-oversized',
    version: `v9.9.9-${long(400, 'x')}`,
    reason: long(10_000),
    incident: {
      ...incident,
      summary: long(12_000),
      reason: long(9_000),
      actions: Array.from({ length: 300 }, (_, i) => `step ${i}: ${long(180)}`),
      analyses: Array.from({ length: 40 }, (_, i) => ({
        name: `gate-${i}`,
        verdict: 'fail' as const,
        reason: long(500),
        measurements: [],
      })),
    },
  };
}
