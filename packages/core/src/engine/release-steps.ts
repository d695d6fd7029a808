import type { JsonValue } from 'type-fest';
import { artifactPath, installArtifact } from '../artifacts/install.js';
import { MigrationFailedError, ReleaseError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { MigrationStep, MigrationStepsRecord } from '../migrations/steps.js';
import type { FlowDeps, RunScope } from './run-scope.js';

/** What a release's header records about its artifact (verified before the run started). */
export interface ArtifactRecord {
  /** Where the verified file was read from. */
  file: string;
  name: string;
  sha256: string;
  sizeBytes: number;
}

/** A migration step that ran, with what its apply returned. */
export interface AppliedStep {
  index: number;
  name: string;
  record: JsonValue | null;
}

/** The release's artifact and migration step names from its header, checked before they are used. */
const headerData = (d: FlowDeps): { artifact?: ArtifactRecord | undefined; migrations: string[] } => {
  const data = d.journal.header.data;
  const artifact = data?.artifact;
  const valid =
    artifact &&
    typeof artifact.file === 'string' &&
    typeof artifact.name === 'string' &&
    typeof artifact.sha256 === 'string' &&
    typeof artifact.sizeBytes === 'number';
  return {
    artifact: valid ? artifact : undefined,
    migrations: (data?.migrations ?? []).filter((m): m is string => typeof m === 'string'),
  };
};

/** The install phase of a hotfix: the verified artifact copied to `<dir>/<version>/<fileName>`, hashed again. */
export async function installPhase(run: RunScope, d: FlowDeps): Promise<void> {
  const artifact = headerData(d).artifact;
  const options = d.options.artifacts;
  if (!artifact || !options) return;
  const version = d.journal.header.version;
  const path = artifactPath(options, version);
  await run.phase('install', () =>
    d.journal.step('install', async () => {
      const out = await installArtifact(artifact.file, path, artifact.sha256);
      return { ...out, name: artifact.name, sizeBytes: artifact.sizeBytes };
    }),
  );
  run.taken.push(`install ${artifact.name} (sha256 ${artifact.sha256.slice(0, 12)}) at ${path}`);
}

function catalogStep(d: FlowDeps, name: string): MigrationStep {
  const step = (d.options.migrations ?? []).find((s) => s.name === name);
  // Checked before the run started; a resumed run whose engine lost the step cannot go on safely.
  if (!step) throw new MigrationFailedError(`migration step ${name} is not in this engine's catalog`);
  return step;
}

/** A migration step's apply or undo through the engine's plugin wrapper (bounded, tagged). */
function migrationCall<T>(
  d: FlowDeps,
  name: string,
  method: 'apply' | 'undo',
  signal: AbortSignal,
  fn: (ctx: { environment: string; version: string; signal: AbortSignal; logger: Logger }) => Promise<T>,
): Promise<T> {
  return d.env.calls.call({ kind: 'migration', plugin: name, method, phase: 'migrate', signal }, (c) =>
    fn({ environment: d.options.environment, version: d.journal.header.version, ...c }),
  );
}

/**
 * Applies the release's migration steps in order, one journal step each (`migrate/<i>`). When one fails,
 * it is undone (with a null record: it may have half-applied), then the ones that finished, in reverse
 * order (`migrate-undo/<i>`); then the failure is thrown.
 * `applied` holds the steps applied and not undone, for the caller's undo after a later failure.
 */
export async function migratePhase(run: RunScope, d: FlowDeps, applied: AppliedStep[]): Promise<void> {
  const names = headerData(d).migrations;
  if (names.length === 0) return;
  await run.phase('migrate', async () => {
    for (const [index, name] of names.entries()) {
      const step = catalogStep(d, name);
      try {
        const record = await d.journal.step<JsonValue | null>(
          `migrate/${index}`,
          async () => (await migrationCall(d, name, 'apply', d.signal, (c) => step.apply(c))) ?? null,
          { step: name },
        );
        applied.push({ index, name, record: d.redactor.value(record ?? null) });
        run.taken.push(`migration ${name} applied`);
      } catch (err) {
        // What the step itself threw (the wrapper tags a plain Error as CG_PLUGIN_FAILED).
        const original = err instanceof ReleaseError && err.code === 'CG_PLUGIN_FAILED' ? err.cause : err;
        const failure =
          original instanceof ReleaseError
            ? original
            : new MigrationFailedError(
                `migration step ${name} failed: ${(original as Error)?.message ?? original}`,
                {
                  cause: original,
                  phase: 'migrate',
                  details: { step: name },
                },
              );
        run.taken.push(`migration ${name} failed: ${failure.message}`);
        // The failed step may have half-applied (a backfill's first batches): its undo runs first.
        applied.push({ index, name, record: null });
        await undoSteps(run, d, applied);
        throw failure;
      }
    }
  });
}

/** Undoes applied steps, newest first, each journaled; its own signal, so a cancelled run is still undone. */
export async function undoSteps(run: RunScope, d: FlowDeps, applied: AppliedStep[]): Promise<void> {
  const signal = new AbortController().signal;
  while (applied.length > 0) {
    const s = applied[applied.length - 1]!;
    const step = catalogStep(d, s.name);
    await d.journal.step(
      `migrate-undo/${s.index}`,
      async () => {
        await migrationCall(d, s.name, 'undo', signal, (c) => step.undo({ ...c, record: s.record }));
        return null;
      },
      { step: s.name },
    );
    applied.pop();
    run.taken.push(`migration ${s.name} undone`);
  }
}

/** The history record of a release's applied steps, for the emergency rollback's database phase. */
export function stepsRecord(d: FlowDeps, applied: readonly AppliedStep[]): MigrationStepsRecord | undefined {
  if (applied.length === 0) return undefined;
  return {
    version: d.journal.header.version,
    steps: applied.map((s) => ({ name: s.name, record: s.record })),
  };
}

/**
 * The emergency rollback's database phase when no `databaseRollback` hook is given: every recorded
 * release's steps undone newest first, by name from the catalog (validated before the rollback started).
 */
export async function undoRecorded(d: FlowDeps, records: readonly MigrationStepsRecord[]): Promise<void> {
  for (const [r, rec] of records.entries()) {
    for (let i = rec.steps.length - 1; i >= 0; i--) {
      const s = rec.steps[i]!;
      const step = catalogStep(d, s.name);
      await d.journal.step(
        `database-rollback/${r}/${i}`,
        async () => {
          await migrationCall(d, s.name, 'undo', d.signal, (c) =>
            step.undo({ ...c, version: rec.version, record: s.record }),
          );
          return null;
        },
        { release: rec.version, step: s.name },
      );
    }
  }
}
