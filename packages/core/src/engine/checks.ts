import { artifactPath, checkNotClobbering } from '../artifacts/install.js';
import { checkArtifactSource, verifyArtifact } from '../artifacts/verify.js';
import { ConfigInvalidError, RecoveryUnconfirmedError } from '../errors.js';
import type { Logger } from '../logger.js';
import { resolveSteps } from '../migrations/steps.js';
import { servingPool } from '../strategies/restore.js';
import { checkVersion, type ReleaseEngineOptions } from './config.js';
import type { PluginCalls } from './plugin-call.js';
import { pickBackup, type RecoverOptions, type RecoveryPlan } from './recovery-options.js';
import type { RunData } from './run-data.js';
import type { ReleaseOptions } from './types.js';

/**
 * A release's artifact verified and its migration steps resolved, before the lock is taken or anything
 * is written: a tampered artifact, a bad signature or an unknown step changes nothing.
 */
export async function checkReleaseExtras(
  options: ReleaseEngineOptions,
  logger: Logger,
  o: ReleaseOptions,
  version: string,
): Promise<RunData> {
  const out: RunData = {};
  if (o.migrations !== undefined) {
    if (o.migration !== undefined)
      throw new ConfigInvalidError('pass either a migration record or migration steps, not both');
    const names = resolveSteps(o.migrations, options.migrations);
    if (names.length > 0) out.migrations = names;
  }
  if (o.artifact !== undefined) {
    const source = checkArtifactSource(o.artifact);
    const conf = options.artifacts;
    if (!conf)
      throw new ConfigInvalidError(
        'release({ artifact }) needs the engine option artifacts: { dir, publicKey }; nothing was changed',
      );
    const verified = await verifyArtifact({ ...source, publicKey: conf.publicKey });
    await checkNotClobbering(artifactPath(conf, version), verified.sha256);
    logger.info(`[${options.environment}] artifact ${verified.name} verified: sha256 ${verified.sha256}`);
    out.artifact = verified;
  }
  return out;
}

/**
 * A recovery's arguments checked and its backup chosen before the lock: confirmation, reason, the
 * backup provider, the backup (by id or point in time) and the version to start.
 */
export async function validateRecovery(
  options: ReleaseEngineOptions,
  calls: PluginCalls,
  o: RecoverOptions,
): Promise<{ version: string; data: RecoveryPlan }> {
  if (o?.confirm !== 'CONFIRM') {
    throw new RecoveryUnconfirmedError(
      "a recovery replaces live data and needs confirm: 'CONFIRM' (exactly, in capitals); nothing was changed",
    );
  }
  if (typeof o.reason !== 'string' || o.reason.trim() === '')
    throw new ConfigInvalidError('a recovery needs a reason for the incident report; nothing was changed');
  const provider = options.backup;
  if (!provider)
    throw new ConfigInvalidError('recover() needs the engine option backup; nothing was changed');
  if (o.version !== undefined) checkVersion(o.version, 'recovery version');
  const signal = o.signal;
  const list = await calls.call(
    { kind: 'backup', plugin: provider.name, method: 'list', phase: 'preflight', signal },
    (c) => provider.list(c),
  );
  const backup = pickBackup(list, o.backup);
  const state = await calls.call(
    { kind: 'target', plugin: options.target.name, method: 'describe', phase: 'preflight', signal },
    (c) => options.target.describe({ signal: c.signal }),
  );
  const stable = servingPool(state.pools);
  const lastGood = (await options.store.history(options.environment)).findLast(
    (h) => h.status === 'succeeded' && h.serving,
  )?.serving;
  const version = o.version ?? stable?.version ?? backup.version ?? lastGood;
  if (!version)
    throw new ConfigInvalidError('nothing serves and the backup names no version: pass recover({ version })');
  const request = 'id' in o.backup ? { id: o.backup.id } : { at: new Date(o.backup.at).toISOString() };
  return {
    version: checkVersion(version),
    data: {
      backup,
      request,
      ...(stable && stable.version === version ? { pool: stable.name, replicas: stable.replicas } : {}),
    },
  };
}
