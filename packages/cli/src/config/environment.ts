import {
  ConfigInvalidError,
  fileStore,
  type Logger,
  type ReleaseEngineOptions,
  type Strategy,
} from '@codegraph/release-core';
import type { BackupFileProgress, EnvironmentConfig } from './define.js';
import type { LoadedConfig } from './load.js';

/** An environment picked and built, ready for `createReleaseEngine`. */
export interface ResolvedEnvironment {
  name: string;
  config: EnvironmentConfig;
  options: ReleaseEngineOptions;
  /** Every value to redact from output: the config's `secrets` and the API keys in the environment. */
  secrets: string[];
}

/** Picks the environment: `--env`, else `defaultEnvironment`, else the only one. */
export function pickEnvironment(loaded: LoadedConfig, asked: string | undefined): string {
  const names = Object.keys(loaded.config.environments);
  const name = asked ?? loaded.config.defaultEnvironment ?? (names.length === 1 ? names[0] : undefined);
  if (name === undefined)
    throw new ConfigInvalidError(`${loaded.file} has several environments: pass --env ${names.join('|')}`);
  if (!Object.hasOwn(loaded.config.environments, name))
    throw new ConfigInvalidError(
      `environment ${JSON.stringify(name)} is not in ${loaded.file} (known: ${names.join(', ')})`,
    );
  return name;
}

/** Secrets the CLI always hides, besides the config's own. */
export function environmentSecrets(env: Readonly<Record<string, string | undefined>>): string[] {
  return ['API_KEY', 'CODEGRAPH_API_KEY', 'ADMIN_API_KEY']
    .map((k) => env[k])
    .filter((v): v is string => typeof v === 'string' && v.length >= 4);
}

/** `--strategy` names a key of `strategies`, or a strategy's own `name` (as a journal records it). */
function pickStrategy(
  environment: string,
  main: Strategy,
  others: Record<string, Strategy>,
  asked: string | undefined,
): Strategy {
  if (asked === undefined || asked === main?.name) return main;
  const found = others[asked] ?? Object.values(others).find((s) => s.name === asked);
  if (found) return found;
  const known = [main?.name, ...Object.keys(others)].filter(Boolean).join(', ');
  throw new ConfigInvalidError(`strategy ${asked} is not configured for ${environment} (known: ${known})`);
}

/** Builds the environment's engine options; `strategy` picks one of `strategies` by name. */
export async function resolveEnvironment(
  loaded: LoadedConfig,
  asked: string | undefined,
  extras: {
    logger: Logger;
    strategy?: string | undefined;
    backupProgress?: ((file: BackupFileProgress) => void) | undefined;
  },
): Promise<ResolvedEnvironment> {
  const name = pickEnvironment(loaded, asked);
  const entry = loaded.config.environments[name]!;
  const config =
    typeof entry === 'function'
      ? await entry({
          environment: name,
          stateDir: loaded.stateDir,
          configDir: loaded.dir,
          env: process.env,
          backupProgress: extras.backupProgress ?? (() => {}),
        })
      : entry;
  if (typeof config !== 'object' || config === null)
    throw new ConfigInvalidError(`environments.${name} did not give an object`);
  const { strategies = {}, validation: _validation, store, strategy, metrics = false, ...rest } = config;
  const picked = pickStrategy(name, strategy, strategies, extras.strategy);
  // Notifiers' credentials too, so CLI output and reports hide them like the engine does.
  const notifierSecrets = (config.notifiers ?? []).flatMap((n) => n?.secrets ?? []);
  const secrets = [...(config.secrets ?? []), ...notifierSecrets, ...environmentSecrets(process.env)];
  return {
    name,
    config,
    secrets,
    options: {
      ...rest,
      environment: name,
      strategy: picked,
      store: store ?? fileStore({ dir: loaded.stateDir }),
      metrics,
      logger: extras.logger,
      secrets,
    },
  };
}
