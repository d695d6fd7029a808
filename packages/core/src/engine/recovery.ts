import { lstat, rename } from 'node:fs/promises';
import type { BackupVerification, RestoreResult } from '../backup/types.js';
import { BackupCorruptError, StoreError } from '../errors.js';
import type { RunStatus } from '../events/types.js';
import { poolName } from '../target/types.js';
import { targetCall } from './actions.js';
import { type RecoveryContext, type RecoveryPlan, recoveryDefaults } from './recovery-options.js';
import { type FlowDeps, message, RunScope } from './run-scope.js';
import type { RunResult } from './types.js';

const exists = (p: string) =>
  lstat(p).then(
    () => true,
    () => false,
  );

/** Moves `dir` aside under the runbook's name, deterministically per run, so a resumed step converges. */
async function moveAside(dir: string, startedAt: string, runId: string) {
  const stamp = startedAt.replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
  const plain = `${dir}.pre-recovery.${stamp}`;
  const unique = `${plain}.${runId.slice(-6)}`;
  if (!(await exists(dir))) {
    // Already moved by this run before a crash, or there was nothing to move.
    const moved = (await exists(unique)) ? unique : (await exists(plain)) ? plain : undefined;
    return { dir, movedAside: moved ?? null };
  }
  const to = (await exists(plain)) ? unique : plain;
  await rename(dir, to);
  return { dir, movedAside: to };
}

/** A recovery hook through the engine's plugin wrapper: bounded, tagged, its logger scoped. */
function hook(
  d: FlowDeps,
  phase: 'stop' | 'start',
  fn: (ctx: RecoveryContext) => Promise<void>,
  ctx: RecoveryContext,
): Promise<void> {
  return d.env.calls.call(
    { kind: 'recovery', plugin: `recovery.${phase}`, method: phase, phase, signal: ctx.signal },
    (c) => fn({ ...ctx, signal: c.signal, logger: c.logger }),
  );
}

/** The recovery's plan from its run header, checked: a journal is read back, never trusted. */
function recoveryPlanOf(d: FlowDeps): RecoveryPlan {
  const data = d.journal.header.data;
  const backup = data?.backup;
  if (!backup || typeof backup.id !== 'string' || typeof backup.createdAt !== 'string')
    throw new StoreError(`run ${d.journal.runId} is a recovery whose header names no backup`);
  const request = data.request ?? { id: backup.id };
  return {
    backup,
    request,
    ...(typeof data.pool === 'string' ? { pool: data.pool } : {}),
    ...(typeof data.replicas === 'number' ? { replicas: data.replicas } : {}),
  };
}

async function defaultStop(d: FlowDeps, ctx: RecoveryContext) {
  // Traffic leaves first (maintenance: the front answers 503), so no pool is scaled down while it serves.
  const route = ctx.target.route?.bind(ctx.target);
  if (route) {
    await targetCall(d.env, 'stop', 'route {}', (c) => route({}, c), ctx.signal);
    d.env.onWeights({});
  }
  const state = await targetCall(
    d.env,
    'stop',
    'describe',
    (c) => ctx.target.describe({ signal: c.signal }),
    ctx.signal,
  );
  for (const p of state.pools) {
    await targetCall(
      d.env,
      'stop',
      `scale ${p.name} to 0`,
      (c) => ctx.target.provision({ pool: p.name, version: p.version, replicas: 0 }, c),
      ctx.signal,
    );
  }
}

async function defaultStart(d: FlowDeps, ctx: RecoveryContext) {
  const { target, pool, version, replicas, signal } = ctx;
  await d.journal.step('start/provision', () =>
    targetCall(
      d.env,
      'start',
      `provision ${pool}`,
      (c) => target.provision({ pool, version, replicas }, c),
      signal,
    ),
  );
  const route = target.route?.bind(target);
  if (route) {
    await d.journal.step('start/route', async () => {
      await targetCall(d.env, 'start', 'route', (c) => route({ [pool]: 100 }, c), signal);
      d.env.onWeights({ [pool]: 100 });
      return { weights: { [pool]: 100 } };
    });
  }
}

/**
 * The runbook's full (or point-in-time) recovery: stop, move current data aside, restore the backup
 * (configuration included when the provider backs it up), start, verify with the validation suite,
 * check the backup's integrity, and report an incident. Every step is journaled, so `resume()` continues it.
 */
export async function runRecovery(d: FlowDeps, resumed: boolean): Promise<RunResult> {
  const run = new RunScope(d);
  const h = d.journal.header;
  const version = h.version;
  const plan = recoveryPlanOf(d);
  const provider = d.options.backup!;
  const opts = d.options.recovery ?? {};
  const backupId = plan.backup.id;
  d.emit({ type: 'run.started', version, reason: h.reason, ...(resumed ? { resumed } : {}) });
  let from: string | undefined;
  const incident = (ok: boolean, why: string) => ({
    severity: ok ? ('P1' as const) : ('P0' as const),
    summary: ok
      ? `recovery of ${h.environment} from backup ${backupId} succeeded; ${version} serves the restored data`
      : `recovery of ${h.environment} from backup ${backupId} failed`,
    reason: why,
    from,
    to: version,
    backupId,
  });
  try {
    const pre = await run.preflight(d.signal);
    from = pre.stable?.version;
    const ctx: RecoveryContext = {
      environment: h.environment,
      version,
      pool: plan.pool ?? pre.stable?.name ?? poolName(version),
      replicas: plan.replicas ?? pre.stable?.replicas ?? d.options.replicas ?? 1,
      target: d.options.target,
      signal: d.signal,
      logger: d.logger,
    };
    run.taken.push(`chose backup ${backupId} taken ${plan.backup.createdAt}`);
    await run.phase('stop', () =>
      d.journal.step('stop', async () => {
        await (opts.stop ? hook(d, 'stop', opts.stop, ctx) : defaultStop(d, ctx));
        return null;
      }),
    );
    run.taken.push('service stopped');
    const restored = await run.phase('restore', async () => {
      for (const [i, dir] of (opts.data ?? recoveryDefaults.data).entries()) {
        const moved = await d.journal.step(`restore/aside/${i}`, () => moveAside(dir, h.startedAt, h.runId), {
          dir,
        });
        if (moved.movedAside) run.taken.push(`moved ${dir} aside to ${moved.movedAside}`);
      }
      return d.journal.step<RestoreResult>('restore', async () => {
        return d.env.calls.call(
          { kind: 'backup', plugin: provider.name, method: 'restore', phase: 'restore', signal: d.signal },
          (c) => provider.restore({ id: backupId }, c),
        );
      });
    });
    run.taken.push(
      `restored backup ${backupId}${restored.movedAside ? ` (previous data moved to ${restored.movedAside})` : ''}`,
    );
    await run.phase('start', () =>
      opts.start
        ? d.journal.step('start', async () => {
            await hook(d, 'start', opts.start!, ctx);
            return null;
          })
        : defaultStart(d, ctx),
    );
    run.taken.push(`started ${version}`);
    const verdict = await run.phase('verify', () => run.verify('verify', version, d.signal));
    const check = await run.phase('integrity', () =>
      d.journal.step<BackupVerification>('integrity', async () => {
        return d.env.calls.call(
          { kind: 'backup', plugin: provider.name, method: 'verify', phase: 'integrity', signal: d.signal },
          (c) => provider.verify(backupId, { level: opts.integrity ?? recoveryDefaults.integrity, ...c }),
        );
      }),
    );
    run.taken.push(
      `integrity check (${check.level}) of ${backupId}: ${check.ok ? 'ok' : `${check.problems.length} problem(s)`}`,
    );
    const ok = verdict.verdict === 'pass' && check.ok;
    const why = ok
      ? (h.reason ?? 'recovery')
      : verdict.verdict !== 'pass'
        ? `${version} did not verify after the restore: ${verdict.reason}`
        : `backup ${backupId} failed its integrity check: ${check.problems.map((p) => p.path).join(', ')}`;
    const status: RunStatus = ok ? 'succeeded' : 'failed';
    const error = check.ok
      ? undefined
      : new BackupCorruptError(why, { details: { problems: check.problems } });
    return await run.finish(
      status,
      { from, serving: verdict.verdict === 'pass' ? version : undefined, reason: why, backupId, error },
      incident(ok, h.reason ?? why),
    );
  } catch (err) {
    return run.finish(
      'failed',
      { from, reason: `recovery failed: ${message(err)}`, error: err, backupId },
      incident(false, message(err)),
    );
  }
}
