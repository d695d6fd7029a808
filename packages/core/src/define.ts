import type { Verifier } from './analysis/types.js';
import type { BackupProvider } from './backup/types.js';
import { ConfigInvalidError } from './errors.js';
import type { Notifier } from './notify/types.js';
import type { Store } from './store/types.js';
import type { Strategy } from './strategies/types.js';
import type { Target } from './target/types.js';

// The define* helpers check a plugin's shape when it is made, so an in-house plugin with a missing
// method fails at start-up with a message naming the plugin, not half-way through a release.
// A plain object typed with `satisfies Target` works just as well where that check is not wanted.

type Kind = 'target' | 'strategy' | 'verifier' | 'backup provider' | 'notifier' | 'store';

function check<T extends { name: string }>(
  kind: Kind,
  plugin: T,
  required: readonly string[],
  optional: readonly string[] = [],
): T {
  if (typeof plugin !== 'object' || plugin === null)
    throw new ConfigInvalidError(`a ${kind} must be an object`);
  if (typeof plugin.name !== 'string' || plugin.name.trim() === '') {
    throw new ConfigInvalidError(`a ${kind} needs a non-empty name`);
  }
  const record = plugin as unknown as Record<string, unknown>;
  const missing = required.filter((m) => typeof record[m] !== 'function');
  if (missing.length) {
    throw new ConfigInvalidError(`${kind} "${plugin.name}" must implement ${missing.join(', ')}`, {
      plugin: plugin.name,
    });
  }
  const wrong = optional.filter((m) => record[m] !== undefined && typeof record[m] !== 'function');
  if (wrong.length) {
    throw new ConfigInvalidError(
      `${kind} "${plugin.name}": ${wrong.join(', ')} must be functions when given`,
      { plugin: plugin.name },
    );
  }
  return plugin;
}

/**
 * Checks a target's shape: `describe`, `provision` and `retire` are required; `route`, `traffic` and `close` optional.
 * @example
 * ```ts
 * export const myLb = (opts: MyLbOptions) => defineTarget({ name: 'my-lb', describe, provision, route, retire })
 * ```
 */
export const defineTarget = <T extends Target>(target: T): T =>
  check('target', target, ['describe', 'provision', 'retire'], ['route', 'traffic', 'close']);

/**
 * Checks a strategy's shape (`deploy` and `undo` generators) and its `requires` list.
 * @example
 * ```ts
 * const allAtOnce = defineStrategy({ name: 'all-at-once', *deploy(input) { ... }, undo: restoreVersion })
 * ```
 */
export function defineStrategy<T extends Strategy>(strategy: T): T {
  check('strategy', strategy, ['deploy', 'undo']);
  for (const cap of strategy.requires ?? []) {
    if (cap !== 'route' && cap !== 'traffic') {
      throw new ConfigInvalidError(
        `strategy "${strategy.name}" requires unknown capability "${String(cap)}"`,
        { plugin: strategy.name },
      );
    }
  }
  return strategy;
}

/**
 * Checks a verifier's shape.
 * @example
 * ```ts
 * const healthy = defineVerifier({ name: 'health', async verify(ctx) { ... } })
 * ```
 */
export const defineVerifier = <T extends Verifier>(verifier: T): T => check('verifier', verifier, ['verify']);

/**
 * Checks a backup provider's shape: `create`, `list`, `verify`, `restore`; `prune` optional.
 * @example
 * ```ts
 * const snapshots = defineBackupProvider({ name: 'zfs', create, list, verify, restore })
 * ```
 */
export const defineBackupProvider = <T extends BackupProvider>(provider: T): T =>
  check('backup provider', provider, ['create', 'list', 'verify', 'restore'], ['prune']);

/**
 * Checks a notifier's shape and its event filter.
 * @example
 * ```ts
 * const chat = defineNotifier({ name: 'chat', events: ['run.finished'], async notify(event) { ... } })
 * ```
 */
export function defineNotifier<T extends Notifier>(notifier: T): T {
  check('notifier', notifier, ['notify'], ['close']);
  if (notifier.events !== undefined && !Array.isArray(notifier.events)) {
    throw new ConfigInvalidError(`notifier "${notifier.name}": events must be an array of event types`, {
      plugin: notifier.name,
    });
  }
  return notifier;
}

/**
 * Checks a store's shape.
 * @example
 * ```ts
 * const shared = defineStore({ name: 'postgres', lock, lockOwner, append, read, runs, recordHistory, history })
 * ```
 */
export const defineStore = <T extends Store>(store: T): T =>
  check('store', store, ['lock', 'lockOwner', 'append', 'read', 'runs', 'recordHistory', 'history']);
