import type { JsonValue } from 'type-fest';
import { ConfigInvalidError, MigrationFailedError } from '../errors.js';
import type { Logger } from '../logger.js';
import { checkIdentifier } from '../rules.js';

/**
 * What a migration step receives when it is applied.
 *
 * @example
 * ```ts
 * const apply = async ({ version, signal, logger }: MigrationContext) => { logger.info(`migrating for ${version}`) }
 * ```
 */
export interface MigrationContext {
  environment: string;
  /** The version being released. */
  version: string;
  signal: AbortSignal;
  logger: Logger;
}

/** What a migration step's undo receives: the record its `apply` returned. */
export interface MigrationUndoContext extends MigrationContext {
  /** What `apply` returned (journaled, redacted), or null. */
  record: JsonValue | null;
}

/**
 * One step of a release's migration runbook, with its rollback. Steps are named in the engine's
 * `migrations` catalog and listed by name in `release({ migrations })`; they run in order after the
 * backup and before the deploy, each journaled. `apply` may run again after a crash, so make it
 * idempotent (as the release plan's migrations are).
 *
 * @example
 * ```ts
 * const addIndex: MigrationStep = {
 *   name: '21-101-shards',
 *   async apply({ signal }) { await db.createIndex('by_shard', { signal }); return { index: 'by_shard' } },
 *   async undo() { await db.dropIndex('by_shard') },
 * }
 * ```
 */
export interface MigrationStep {
  /** Unique in the catalog; letters, digits, `.`, `_`, `-`. */
  readonly name: string;
  /** Applies the step. Its return value is journaled and given to `undo` (keep it small and secret-free). */
  apply(ctx: MigrationContext): Promise<JsonValue | undefined>;
  /**
   * Reverts what `apply` did. Also runs after `apply` itself failed (with `record: null`), so it must
   * cope with a half-applied step and with nothing applied at all.
   */
  undo(ctx: MigrationUndoContext): Promise<void>;
}

/** What a release records for its migration steps; the emergency rollback undoes them from this. */
export interface MigrationStepsRecord {
  version: string;
  /** The steps that were applied, in order, with what each returned. */
  steps: Array<{ name: string; record: JsonValue | null }>;
}

/** Whether a history migration record is a {@link MigrationStepsRecord}. */
export function isStepsRecord(value: unknown): value is MigrationStepsRecord {
  const v = value as MigrationStepsRecord | null;
  return (
    !!v &&
    typeof v === 'object' &&
    typeof v.version === 'string' &&
    Array.isArray(v.steps) &&
    v.steps.every((s) => s && typeof s.name === 'string')
  );
}

/** Checks the engine's catalog: names valid and unique, apply and undo present. */
export function checkCatalog(steps: readonly MigrationStep[]): void {
  if (!Array.isArray(steps)) throw new ConfigInvalidError('migrations must be an array of steps');
  const seen = new Set<string>();
  for (const s of steps) {
    checkIdentifier(s?.name, 'migration step name');
    if (typeof s.apply !== 'function' || typeof s.undo !== 'function')
      throw new ConfigInvalidError(`migration step ${s.name} needs apply and undo functions`);
    if (seen.has(s.name)) throw new ConfigInvalidError(`two migration steps are named ${s.name}`);
    seen.add(s.name);
  }
}

/** Resolves the names a release lists against the catalog, before anything runs. */
export function resolveSteps(names: unknown, catalog: readonly MigrationStep[] | undefined): string[] {
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string'))
    throw new ConfigInvalidError('release migrations must be an array of step names');
  const known = new Map((catalog ?? []).map((s) => [s.name, s]));
  const missing = names.filter((n) => !known.has(n));
  if (missing.length > 0) {
    throw new ConfigInvalidError(
      `migration step(s) ${missing.join(', ')} are not in the engine's migrations catalog (${[...known.keys()].join(', ') || 'empty'}); nothing was changed`,
    );
  }
  if (new Set(names).size !== names.length)
    throw new ConfigInvalidError('a release lists the same migration step twice');
  return names;
}

/**
 * Options of {@link backfill}.
 *
 * @example
 * ```ts
 * const options: BackfillOptions = {
 *   name: '21-102-backfill',
 *   batchSize: 500,
 *   batch: async ({ offset, limit }) => ({ processed: await copyRows(offset, limit) }),
 *   undo: async () => { await deleteCopies() },
 * }
 * ```
 */
export interface BackfillOptions {
  name: string;
  /** Items per batch (the seed's `--batch-size`). @default 500 */
  batchSize?: number;
  /** Stop at the first batch that reports failed items (the seed's `--stop-on-error`). @default true */
  stopOnError?: boolean;
  /** Processes items `[offset, offset + limit)`; fewer than `limit` processed means the end was reached. */
  batch(input: { offset: number; limit: number; signal: AbortSignal; logger: Logger }): Promise<{
    processed: number;
    failed?: number;
  }>;
  undo(ctx: MigrationUndoContext): Promise<void>;
}

/** The defaults of {@link backfill}, in one place. */
export const backfillDefaults = { batchSize: 500, stopOnError: true } as const;

/**
 * A backfill as a migration step: batches of `batchSize` until a short batch, stopping at the first
 * failed item when `stopOnError` (a {@link MigrationFailedError} naming the batch). Its record says how
 * many batches and items ran, and how many failed.
 *
 * @example
 * ```ts
 * createReleaseEngine({ ..., migrations: [backfill({ name: '21-102-backfill', batchSize: 500, batch, undo })] })
 * ```
 */
export function backfill(options: BackfillOptions): MigrationStep {
  const batchSize = options.batchSize ?? backfillDefaults.batchSize;
  const stopOnError = options.stopOnError ?? backfillDefaults.stopOnError;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new ConfigInvalidError(`backfill ${options.name}: batchSize must be a positive integer`);
  if (typeof options.batch !== 'function' || typeof options.undo !== 'function')
    throw new ConfigInvalidError(`backfill ${options.name} needs batch and undo functions`);
  return {
    name: options.name,
    async apply({ signal, logger }) {
      let offset = 0;
      let batches = 0;
      let failed = 0;
      for (;;) {
        signal.throwIfAborted();
        const r = await options.batch({ offset, limit: batchSize, signal, logger });
        batches++;
        failed += r.failed ?? 0;
        if ((r.failed ?? 0) > 0 && stopOnError) {
          throw new MigrationFailedError(
            `backfill ${options.name}: ${r.failed} item(s) failed in the batch at offset ${offset} (stop-on-error)`,
            { details: { step: options.name, offset, batchSize, processed: offset + r.processed } },
          );
        }
        offset += r.processed;
        if (r.processed < batchSize) break;
      }
      logger.info(`backfill ${options.name}: ${offset} item(s) in ${batches} batch(es) of ${batchSize}`);
      return { batches, processed: offset, failed, batchSize };
    },
    undo: options.undo,
  };
}

/**
 * A validation step: reads counts and compares them with what is expected; a difference fails the
 * step (and so undoes the steps before it). Its undo does nothing.
 *
 * @example
 * ```ts
 * validateCounts({ name: '21-102-validate', counts: () => db.counts(), expected: () => ({ observations: 1200 }) })
 * ```
 */
export function validateCounts(options: {
  name: string;
  counts(ctx: MigrationContext): Promise<Record<string, number>>;
  expected(ctx: MigrationContext): Promise<Record<string, number>> | Record<string, number>;
}): MigrationStep {
  return {
    name: options.name,
    async apply(ctx) {
      const [observed, expected] = await Promise.all([options.counts(ctx), options.expected(ctx)]);
      const wrong = Object.keys(expected).filter((k) => observed[k] !== expected[k]);
      if (wrong.length > 0) {
        throw new MigrationFailedError(
          `${options.name}: counts differ: ${wrong.map((k) => `${k} ${observed[k] ?? 'missing'} (expected ${expected[k]})`).join(', ')}`,
          { details: { step: options.name, observed, expected } },
        );
      }
      return { observed };
    },
    async undo() {},
  };
}
