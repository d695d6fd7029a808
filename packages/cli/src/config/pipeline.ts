import {
  ConfigInvalidError,
  createPipeline,
  createReleaseEngine,
  fileStore,
  type Logger,
  type Notifier,
  type Pipeline,
  type ReleaseEngine,
  type StageOptions,
  type Store,
} from '@codegraph/release-core';
import { resolveEnvironment } from './environment.js';
import type { LoadedConfig } from './load.js';

/**
 * One stage of a configured pipeline: an environment of the config (its engine is built from it) and the
 * guards before it (soak, approval, windows, extra gates).
 *
 * @example
 * ```ts
 * const production: PipelineStageConfig = {
 *   environment: 'production',
 *   soakMs: 3_600_000,
 *   approval: { required: 2, approvers: ['alice', 'bob', 'carol'] },
 *   windows: [{ action: 'allow', cron: '0 9 * * 1-4', durationMs: 7 * 3_600_000, timeZone: 'Europe/Berlin' }],
 * }
 * ```
 */
export interface PipelineStageConfig extends Omit<StageOptions, 'engine' | 'target' | 'name'> {
  /** The environment (a key of `environments`) this stage releases. */
  environment: string;
  /** The stage's name in approvals and status. @default the environment's name */
  name?: string;
}

/**
 * A pipeline in `release.config.ts`: environments in promotion order.
 *
 * @example
 * ```ts
 * pipelines: { main: { stages: [{ environment: 'staging' }, { environment: 'production', soakMs: 3_600_000 }] } }
 * ```
 */
export interface PipelineConfig {
  stages: PipelineStageConfig[];
  /** Where the pipeline's journal, lease and approvals live. @default fileStore({ dir: stateDir }) */
  store?: Store;
  /** Told when the pipeline starts and finishes. @default [] */
  notifiers?: Notifier[];
  /** How often a waiting pipeline looks at its clock, in ms. @default 5_000 */
  checkEveryMs?: number;
  /** The longest one call to the pipeline's store may take, in ms. @default 60_000 */
  storeMs?: number;
}

const fail = (message: string): never => {
  throw new ConfigInvalidError(`config: ${message}`);
};

/** Shape checks of `pipelines` (the core checks the rest when the pipeline is built). */
export function checkPipelines(pipelines: unknown, environments: object): void {
  if (pipelines === undefined) return;
  if (typeof pipelines !== 'object' || pipelines === null)
    fail('pipelines must be an object of named pipelines');
  for (const [name, p] of Object.entries(pipelines as object)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name))
      fail(`pipeline name ${JSON.stringify(name)} is not valid`);
    const stages = (p as Partial<PipelineConfig> | null)?.stages;
    if (!Array.isArray(stages) || stages.length === 0)
      fail(`pipelines.${name}.stages must list environments in order`);
    for (const [i, s] of (stages as unknown[]).entries()) {
      const env = (s as { environment?: unknown } | null)?.environment;
      if (typeof env !== 'string' || !Object.hasOwn(environments, env)) {
        fail(
          `pipelines.${name}.stages[${i}].environment must be one of ${Object.keys(environments).join(', ')}`,
        );
      }
    }
  }
}

/** Picks the pipeline: `--pipeline`, else the only one. */
export function pickPipeline(loaded: LoadedConfig, asked: string | undefined): [string, PipelineConfig] {
  const all = loaded.config.pipelines ?? {};
  const names = Object.keys(all);
  const name = asked ?? (names.length === 1 ? names[0] : undefined);
  if (name === undefined) {
    throw new ConfigInvalidError(
      names.length === 0
        ? `${loaded.file} has no pipelines: add pipelines: { main: { stages: [...] } }`
        : `${loaded.file} has several pipelines: pass --pipeline ${names.join('|')}`,
    );
  }
  if (!Object.hasOwn(all, name)) {
    throw new ConfigInvalidError(
      `pipeline ${JSON.stringify(name)} is not in ${loaded.file} (known: ${names.join(', ')})`,
    );
  }
  return [name, all[name]!];
}

/** A configured pipeline with its stage engines built, and how to let go of it. */
export interface OpenPipeline {
  pipeline: Pipeline;
  store: Store;
  secrets: string[];
  close(): Promise<void>;
}

/** Builds the pipeline's stage engines from their environments, then the pipeline. */
export async function buildPipeline(
  loaded: LoadedConfig,
  asked: string | undefined,
  logger: Logger,
  clock?: () => Date,
): Promise<OpenPipeline> {
  const [name, config] = pickPipeline(loaded, asked);
  const engines: ReleaseEngine[] = [];
  const closers: Array<() => Promise<void>> = [];
  const secrets: string[] = [];
  const stages: StageOptions[] = [];
  try {
    for (const s of config.stages) {
      const { environment, name: stageName, ...guards } = s;
      const resolved = await resolveEnvironment(loaded, environment, { logger });
      secrets.push(...resolved.secrets);
      const engine = createReleaseEngine(resolved.options);
      engines.push(engine);
      closers.push(async () => {
        await engine.close();
        await resolved.options.target.close?.();
      });
      stages.push({ ...guards, name: stageName ?? environment, engine, target: resolved.options.target });
    }
    const store = config.store ?? fileStore({ dir: loaded.stateDir });
    const pipeline = createPipeline({
      name,
      store,
      stages,
      logger,
      ...(config.notifiers ? { notifiers: config.notifiers } : {}),
      ...(config.checkEveryMs ? { checkEveryMs: config.checkEveryMs } : {}),
      ...(config.storeMs !== undefined ? { storeMs: config.storeMs } : {}),
      ...(clock ? { clock } : {}),
    });
    return {
      pipeline,
      store,
      secrets,
      async close() {
        await pipeline.close();
        for (const c of closers) await c().catch(() => undefined);
      },
    };
  } catch (err) {
    for (const c of closers) await c().catch(() => undefined);
    throw err;
  }
}
