import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { ConfigInvalidError } from '@codegraph/release-core';
import { createJiti } from 'jiti';
import { checkConfig, configDefaults, type ReleaseConfig } from './define.js';
import { fromJson } from './json.js';

/**
 * The file names looked for in the working directory, in this order.
 *
 * @example
 * ```ts
 * console.log(`create one of ${configFileNames.join(', ')}`)
 * ```
 */
export const configFileNames = [
  'release.config.ts',
  'release.config.mts',
  'release.config.js',
  'release.config.mjs',
  'release.config.cjs',
  'release.config.json',
] as const;

/**
 * A loaded config file.
 *
 * @example
 * ```ts
 * const { file, stateDir, config } = await loadConfig(process.cwd())
 * ```
 */
export interface LoadedConfig {
  /** Absolute path of the file. */
  file: string;
  /** Its directory; relative paths in the config are resolved against it. */
  dir: string;
  /** The absolute state directory. */
  stateDir: string;
  config: ReleaseConfig;
}

/** Our packages a config may import; resolved next to the CLI when the config's own folder lacks them. */
const ourPackages = [
  '@codegraph/release-core',
  '@codegraph/release-cli',
  '@codegraph/strategy-canary',
  '@codegraph/strategy-bluegreen',
  '@codegraph/backup-rocksdb',
  '@codegraph/notify',
  '@codegraph/target-nginx',
  '@codegraph/store-postgres',
];

/** Finds the config: `--config` when given, else the first of {@link configFileNames} in `cwd`. */
export function findConfig(cwd: string, given?: string): string {
  if (given !== undefined) {
    const file = resolve(cwd, given);
    if (!existsSync(file)) throw new ConfigInvalidError(`config file ${given} does not exist`);
    return file;
  }
  for (const name of configFileNames) {
    const file = join(cwd, name);
    if (existsSync(file)) return file;
  }
  throw new ConfigInvalidError(
    `no release.config.{ts,js,json} in ${cwd}: create one (see https://github.com/codegraph/codegraph-release-sdk/blob/main/docs/configuration.md) or pass --config <file>`,
  );
}

function aliases(file: string): Record<string, string> {
  const fromConfig = createRequire(file);
  const fromCli = createRequire(import.meta.url);
  const out: Record<string, string> = {};
  for (const name of ourPackages) {
    try {
      fromConfig.resolve(name);
    } catch {
      try {
        out[name] = dirname(fromCli.resolve(`${name}/package.json`));
      } catch {
        // Not installed next to the CLI either: the config's import fails with Node's own message.
      }
    }
  }
  return out;
}

/**
 * Loads and checks a config file (TypeScript through jiti, JavaScript natively, JSON declaratively):
 * `given` (like `--config`) or the first of {@link configFileNames} in `cwd`. Every problem is a
 * `CG_CONFIG_INVALID` error.
 *
 * @example
 * ```ts
 * const loaded = await loadConfig(process.cwd(), 'deploy/release.config.ts')
 * console.log(Object.keys(loaded.config.environments))
 * ```
 */
export async function loadConfig(cwd: string, given?: string): Promise<LoadedConfig> {
  const file = findConfig(cwd, given);
  const dir = dirname(file);
  let config: unknown;
  try {
    if (file.endsWith('.json')) {
      config = await fromJson(JSON.parse(await readFile(file, 'utf8')), dir);
    } else {
      const jiti = createJiti(import.meta.url, { alias: aliases(file), moduleCache: false, fsCache: false });
      config = await jiti.import(file, { default: true });
    }
  } catch (err) {
    if (err instanceof ConfigInvalidError) throw err;
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ConfigInvalidError(`config file ${file} could not be loaded: ${message}`, { cause: err });
  }
  checkConfig(config);
  return { file, dir, stateDir: resolve(dir, config.stateDir ?? configDefaults.stateDir), config };
}
