import { AnalysisFailedError } from '../errors.js';
import type { RunStatus } from '../events/types.js';
import { isStepsRecord } from '../migrations/steps.js';
import {
  type AppliedStep,
  installPhase,
  migratePhase,
  stepsRecord,
  undoRecorded,
  undoSteps,
} from './release-steps.js';
import { type FlowDeps, message, type Preflight, RunScope } from './run-scope.js';
import type { RunResult } from './types.js';

/** A release: preflight → backup → deploy → verify; on failure undo → verify the old version. */
export async function runRelease(d: FlowDeps, resumed: boolean): Promise<RunResult> {
  const run = new RunScope(d);
  const h = d.journal.header;
  const version = h.version;
  d.emit({ type: 'run.started', version, reason: h.reason, ...(resumed ? { resumed } : {}) });
  let from: string | undefined;
  let backupId: string | undefined;
  let changed = false;
  let pre: Preflight | undefined;
  const applied: AppliedStep[] = [];
  try {
    pre = await run.preflight(d.signal);
    from = pre.stable?.version;
    if (from === version) {
      return await run.finish(
        'succeeded',
        { from, serving: version, reason: `${version} already serves ${h.environment}` },
        undefined,
      );
    }
    backupId = await run.phase('backup', () => run.backup('pre-release', from, d.signal));
    changed = true;
    await installPhase(run, d);
    await migratePhase(run, d, applied);
    const input = { version, stable: pre.stable ?? undefined, state: pre.state, replicas: pre.replicas };
    await run.phase('deploy', () => run.plan('deploy', 'deploy', d.options.strategy.deploy(input), d.signal));
    const verdict = await run.phase('verify', () => run.verify('verify', version, d.signal));
    if (verdict.verdict !== 'pass') {
      throw new AnalysisFailedError(
        `verification of ${version} ended ${verdict.verdict}: ${verdict.reason}`,
        { phase: 'verify' },
      );
    }
    return await run.finish(
      'succeeded',
      { from, serving: version, backupId, migration: stepsRecord(d, applied) },
      undefined,
    );
  } catch (err) {
    const why = message(err);
    if (!changed || !pre) {
      return run.finish('failed', { from, serving: from, reason: why, error: err, backupId }, undefined);
    }
    if (!from) {
      // Nothing to go back to: stop the pools that never took traffic, so a failed first release leaves nothing running unseen.
      await run
        .cleanUnrouted(version)
        .catch((e) => d.logger.warn(`${run.label}: cleanup failed: ${message(e)}`));
      if (applied.length > 0) {
        await run
          .phase('migrate', () => undoSteps(run, d, applied))
          .catch((e) => d.logger.error(`${run.label}: undo of migrations failed: ${message(e)}`));
      }
      return run.finish(
        'failed',
        { from, reason: `${why}; first release, nothing to roll back to`, error: err, backupId },
        {
          severity: 'P1',
          summary: `first release of ${version} to ${h.environment} failed`,
          reason: why,
          to: version,
          backupId,
        },
      );
    }
    // The undo must complete even when the release was cancelled: it gets its own signal.
    const undoSignal = new AbortController().signal;
    let restored = false;
    let undoError: unknown;
    try {
      restored = await run.undo(from, pre.replicas, d.signal.aborted ? 'aborted' : 'failed', undoSignal);
    } catch (e) {
      undoError = e;
    }
    // The old version serves again; now the schema can go back (steps undone newest first).
    if (applied.length > 0) {
      try {
        await run.phase('migrate', () => undoSteps(run, d, applied));
      } catch (e) {
        undoError ??= e;
        restored = false;
      }
    }
    const status: RunStatus = restored ? 'rolled-back' : 'failed';
    const reason = undoError
      ? `${why}; undo failed: ${message(undoError)}`
      : restored
        ? why
        : `${why}; ${from} did not verify after the undo`;
    return run.finish(
      status,
      { from, serving: restored ? from : undefined, reason, error: err, backupId },
      {
        severity: restored ? 'P2' : 'P0',
        summary: restored
          ? `release of ${version} to ${h.environment} was rolled back to ${from}`
          : `release of ${version} to ${h.environment} failed and ${from} could not be restored`,
        reason: why,
        from: version,
        to: from,
        backupId,
      },
    );
  }
}

/** The runbook's emergency rollback: validation (done before the run), backup, database, application, verification, notification. */
export async function runRollback(d: FlowDeps, resumed: boolean): Promise<RunResult> {
  const run = new RunScope(d);
  const h = d.journal.header;
  const to = h.version;
  d.emit({ type: 'run.started', version: to, reason: h.reason, ...(resumed ? { resumed } : {}) });
  let from: string | undefined;
  let backupId: string | undefined;
  try {
    const pre = await run.preflight(d.signal);
    from = pre.stable?.version;
    backupId = await run.phase('backup', () => run.backup('pre-rollback', from, d.signal));
    const migrations = [...(h.data?.migrations ?? [])];
    const hook = d.options.databaseRollback;
    if (migrations.length > 0 && !hook && migrations.every(isStepsRecord)) {
      await run.phase('database-rollback', () => undoRecorded(d, migrations.filter(isStepsRecord)));
      run.taken.push(`database rollback of ${migrations.length} migration(s)`);
    } else if (migrations.length > 0 && hook) {
      await run.phase('database-rollback', () =>
        d.journal.step('database-rollback', async () => {
          await d.env.calls.call(
            {
              kind: 'databaseRollback',
              plugin: 'databaseRollback',
              method: 'databaseRollback',
              phase: 'database-rollback',
              signal: d.signal,
            },
            (c) => hook({ environment: h.environment, from, to, migrations, ...c }),
          );
          return { migrations: migrations.length };
        }),
      );
      run.taken.push(`database rollback of ${migrations.length} migration(s)`);
    }
    const restored = await run.undo(to, pre.replicas, 'emergency', d.signal);
    const status: RunStatus = restored ? 'succeeded' : 'failed';
    return await run.finish(
      status,
      { from, serving: restored ? to : undefined, reason: h.reason, backupId },
      {
        severity: restored ? 'P1' : 'P0',
        summary: restored
          ? `emergency rollback of ${h.environment} from ${from ?? 'nothing'} to ${to} succeeded`
          : `emergency rollback of ${h.environment} to ${to} did not verify`,
        reason: h.reason ?? 'emergency rollback',
        from,
        to,
        backupId,
      },
    );
  } catch (err) {
    return run.finish(
      'failed',
      { from, reason: `${h.reason ?? 'emergency rollback'}; failed: ${message(err)}`, error: err, backupId },
      {
        severity: 'P0',
        summary: `emergency rollback of ${h.environment} to ${to} failed`,
        reason: message(err),
        from,
        to,
        backupId,
      },
    );
  }
}
