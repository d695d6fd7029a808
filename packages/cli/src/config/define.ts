import {
  ConfigInvalidError,
  type ReleaseEngineOptions,
  type Store,
  type Strategy,
  type ValidationOptions,
} from '@codegraph/release-core';
import { checkIdentifier } from '@codegraph/release-core/kit';
import { checkPipelines, type PipelineConfig } from './pipeline.js';

/**
 * One environment's engine options, as a config file gives them: everything
 * `createReleaseEngine` takes except `environment` (the key it is listed under), `logger` (the CLI's)
 * and `store` (optional here).
 *
 * @example
 * ```ts
 * const staging: EnvironmentConfig = {
 *   target: localTarget({ stateDir: '.codegraph-release/local', command }),
 *   strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
 *   strategies: { canary: canary({ weights: [10, 50] }) },
 *   verifiers: [httpValidation({ maxResponseTimeMs: 200 })],
 * }
 * ```
 */
export interface EnvironmentConfig extends Omit<ReleaseEngineOptions, 'environment' | 'logger' | 'store'> {
  /** The strategy `deploy` uses unless `--strategy` names one of {@link EnvironmentConfig.strategies}. */
  strategy: Strategy;
  /**
   * Other strategies `--strategy <name>` can pick (the workflow's `deployment_strategy` input), by name.
   * `--strategy` also accepts the name of {@link EnvironmentConfig.strategy} itself.
   * @default {}
   */
  strategies?: Record<string, Strategy>;
  /** Journal, history and lock. @default fileStore({ dir: stateDir }) */
  store?: Store;
  /**
   * Settings of `codegraph-release validate --env <name>`; the validate.sh variables (`BASE_URL`, ...)
   * and flags win over them.
   * @default {}
   */
  validation?: ValidationOptions;
  /**
   * prom-client registry for the engine's metrics, or `false`. A command-line run has nobody scraping
   * it, so the CLI turns metrics off unless a config asks for them.
   * @default false
   */
  metrics?: ReleaseEngineOptions['metrics'];
}

/**
 * What a lazily built environment receives: only the environment a command picks is built, so one
 * environment's secrets are not needed to release another.
 *
 * @example
 * ```ts
 * const production = ({ stateDir, env, backupProgress }: ConfigContext): EnvironmentConfig => ({
 *   target: nginxTarget({ stateDir: `${stateDir}/nginx`, command }),
 *   strategy: canary({ weights: [5, 25, 50] }),
 *   notifiers: [slack({ webhookUrl: env.SLACK_WEBHOOK_URL! })],
 *   backup: rocksdbBackup({ repository: '/opt/codegraph/backups', db: '/opt/codegraph/data/rocksdb', onProgress: backupProgress }),
 *   secrets: [env.SLACK_WEBHOOK_URL!],
 * })
 * ```
 */
export interface ConfigContext {
  /** The environment being built. */
  environment: string;
  /** The resolved, absolute {@link ReleaseConfig.stateDir}. */
  stateDir: string;
  /** The directory of the config file. */
  configDir: string;
  /** The process environment. */
  env: Readonly<Record<string, string | undefined>>;
  /**
   * Shows a backup's progress on a terminal: pass it as a backup provider's per-file progress callback
   * (e.g. `rocksdbBackup({ ..., onProgress: backupProgress })`). Prints nothing off a TTY.
   */
  backupProgress: (file: BackupFileProgress) => void;
}

/**
 * One file a backup stored, as {@link ConfigContext.backupProgress} takes it.
 *
 * @example
 * ```ts
 * backupProgress({ path: 'rocksdb/000012.sst', size: 4_194_304 })
 * ```
 */
export interface BackupFileProgress {
  /** Path inside the backup. */
  path: string;
  /** Bytes. */
  size: number;
}

/**
 * An environment built on demand. May be async (e.g. to read a secret store).
 *
 * @example
 * ```ts
 * const staging: EnvironmentFactory = ({ stateDir }) => ({ target: localTarget({ stateDir, command }), strategy: rolling() })
 * ```
 */
export type EnvironmentFactory = (context: ConfigContext) => EnvironmentConfig | Promise<EnvironmentConfig>;

/**
 * The `release.config.{ts,js,json}` file: where the CLI keeps its state and how to build each
 * environment's engine.
 *
 * @example
 * ```ts
 * export default defineConfig({
 *   defaultEnvironment: 'staging',
 *   environments: { staging: { target, strategy: rolling() }, production: ({ env }) => ({ ... }) },
 * })
 * ```
 */
export interface ReleaseConfig {
  /**
   * Directory for the default file store (journals, history, locks) and the promote/abort control
   * files, relative to the config file. `deploy` and `promote`/`abort` must see the same directory.
   * @default '.codegraph-release'
   */
  stateDir?: string;
  /** The environment used when `--env` is not given. @default the only environment, when there is one */
  defaultEnvironment?: string;
  /** The environments, by name (letters, digits, `.`, `_`, `-`). */
  environments: Record<string, EnvironmentConfig | EnvironmentFactory>;
  /** Promotion pipelines over the environments (`promote-pipeline`, `pipeline status|approve|plan`). @default {} */
  pipelines?: Record<string, PipelineConfig>;
}

/**
 * Defaults of {@link ReleaseConfig}, in one place.
 *
 * @example
 * ```ts
 * const dir = config.stateDir ?? configDefaults.stateDir
 * ```
 */
export const configDefaults = Object.freeze({ stateDir: '.codegraph-release' });

/**
 * Types a config file and checks its shape; a problem is a `CG_CONFIG_INVALID` error naming the
 * field. Plugins are checked when the engine is created, environment by environment.
 *
 * @example
 * ```ts
 * // release.config.ts
 * import { defineConfig } from '@codegraph/release-cli';
 * import { fileStore, httpValidation, localTarget, rolling } from '@codegraph/release-core';
 *
 * export default defineConfig({
 *   environments: {
 *     staging: {
 *       target: localTarget({
 *         stateDir: '.codegraph-release/local',
 *         command: ({ version, port }) => ({ command: `/opt/codegraph/${version}/codegraph-api`, args: ['--port', String(port)] }),
 *       }),
 *       strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
 *       verifiers: [httpValidation({ maxResponseTimeMs: 200 })],
 *     },
 *   },
 * });
 * ```
 */
export function defineConfig<const T extends ReleaseConfig>(config: T): T {
  checkConfig(config);
  return config;
}

/** Shape checks shared by {@link defineConfig} and the loader (a config may skip `defineConfig`). */
export function checkConfig(config: unknown): asserts config is ReleaseConfig {
  const fail = (message: string): never => {
    throw new ConfigInvalidError(`config: ${message}`);
  };
  if (typeof config !== 'object' || config === null) fail('must export an object (use defineConfig)');
  const c = config as Partial<ReleaseConfig>;
  if (c.stateDir !== undefined && (typeof c.stateDir !== 'string' || c.stateDir === ''))
    fail('stateDir must be a directory path');
  const envs = c.environments;
  if (typeof envs !== 'object' || envs === null || Object.keys(envs).length === 0)
    fail('environments must name at least one environment, e.g. { staging: { target, strategy } }');
  for (const [name, value] of Object.entries(envs as object)) {
    checkIdentifier(name, 'environment name');
    if (typeof value !== 'function' && (typeof value !== 'object' || value === null))
      fail(`environments.${name} must be an object or a function returning one`);
  }
  checkPipelines(c.pipelines, envs as object);
  if (c.defaultEnvironment !== undefined && !Object.hasOwn(envs as object, c.defaultEnvironment))
    fail(
      `defaultEnvironment ${JSON.stringify(c.defaultEnvironment)} is not one of ${Object.keys(envs as object).join(', ')}`,
    );
}
