import type { Registry } from 'prom-client';
import type { GateOptions, Verifier } from '../analysis/types.js';
import { type ArtifactOptions, checkArtifactOptions } from '../artifacts/install.js';
import type { BackupProvider } from '../backup/types.js';
import { ConfigInvalidError } from '../errors.js';
import type { Logger, LoggerInput } from '../logger.js';
import { checkCatalog, type MigrationStep } from '../migrations/steps.js';
import type { Notifier } from '../notify/types.js';
import type { TracingOptions } from '../observability/tracing.js';
import { checkIdentifier, checkReplicas, checkVersion } from '../rules.js';
import type { Store } from '../store/types.js';
import type { Strategy } from '../strategies/types.js';
import type { Target } from '../target/types.js';
import type { RetryOptions } from '../util/retry.js';
import type { DeliveryOptions } from './fanout.js';
import { type PluginDeadlines, pluginDeadlineDefaults } from './plugin-call.js';
import type { RecoveryOptions } from './recovery-options.js';

/** What the database-rollback hook receives: the migration records of the releases being undone. */
export interface DatabaseRollbackContext {
  environment: string;
  /** The version being rolled back from. */
  from: string | undefined;
  /** The version being rolled back to. */
  to: string;
  /** Migration records of the releases after `to`, newest first (as passed to `release({ migration })`). */
  migrations: unknown[];
  signal: AbortSignal;
  logger: Logger;
}

/** Options of {@link createReleaseEngine}. */
export interface ReleaseEngineOptions {
  /** The environment this engine releases, e.g. `production`. 1-128 letters, digits, `.`, `_`, `-` (see `rules`). */
  environment: string;
  target: Target;
  strategy: Strategy;
  /** Journal, history and lock. */
  store: Store;
  /** Verifiers run by analysis actions and by the verify phase. @default [] */
  verifiers?: Verifier[];
  /** Gate of the verify phase after a release or rollback. @default one measurement */
  verifyGate?: GateOptions;
  /** Taken before every release and emergency rollback. @default none */
  backup?: BackupProvider;
  /** Told about runs, in isolation. @default [] */
  notifiers?: Notifier[];
  /** Delivery timeouts and retries of notifiers. @default { timeoutMs: 10_000 } */
  delivery?: DeliveryOptions;
  /**
   * The engine's own deadline for each kind of plugin call (target, verifier, backup, migration,
   * database rollback, recovery hooks) and for `close()`: the engine stops waiting when it passes,
   * whatever the plugin does. @default see {@link PluginDeadlines}
   */
  deadlines?: PluginDeadlines;
  /** Replicas at full size, 1 to `rules.replicasMax` (64). @default the serving pool's size, or 2 on a first release */
  replicas?: number;
  /**
   * prom-client registry (and name prefix), or `false` for no metrics.
   * @default a private registry per engine (not prom-client's global one), read back as `engine.registry`
   */
  metrics?: { registry?: Registry; prefix?: string } | false;
  /**
   * OpenTelemetry traces: a span per run, phase, step and analysis gate (see `traceEvents`). `false`
   * turns them off. @default on, with the global tracer provider of `@opentelemetry/api` when that
   * optional peer is installed (a no-op until the application registers an SDK)
   */
  tracing?: TracingOptions | false;
  /**
   * Where the engine and plugins log: a message-first logger (console, winston, `consoleLogger`) or a
   * fields-first one (pino, bunyan); every line is redacted first. @default a silent logger
   */
  logger?: LoggerInput;
  /** Retries of retryable target calls. @default { retries: 2, minTimeoutMs: 200, maxTimeoutMs: 2000 } */
  retry?: RetryOptions;
  /** Values to redact from logs, events, errors and the journal (API keys, tokens, webhook URLs). @default [] */
  secrets?: string[];
  /** The emergency rollback's database phase, called when the releases being undone recorded migrations. */
  databaseRollback?: (ctx: DatabaseRollbackContext) => Promise<void>;
  /** Versions a rollback may target besides those the history knows as good (e.g. known tags). @default [] */
  knownVersions?: string[];
  /**
   * Where verified artifacts are installed and the key that signs them; needed by `release({ artifact })`.
   * @default none (a release with an artifact is refused)
   */
  artifacts?: ArtifactOptions;
  /**
   * The migration steps a release may list by name (`release({ migrations: [...] })`), each with its undo.
   * Without a `databaseRollback` hook, the emergency rollback undoes recorded steps from this catalog.
   * @default []
   */
  migrations?: MigrationStep[];
  /** How `recover()` stops and starts the service and which data it moves aside. @default {} (see {@link RecoveryOptions}) */
  recovery?: RecoveryOptions;
  /**
   * A directory where each run's manifest is written as `<runId>.manifest.json` when it ends (point it at
   * the file store's `runs/` folder to keep manifests next to the journals). @default none
   */
  manifestDir?: string;
}

// The engine's checks are core's shared rules (`rules.ts`), the same ones the targets apply.
export { checkVersion };

function need(cond: unknown, message: string): asserts cond {
  if (!cond) throw new ConfigInvalidError(message);
}

const isFn = (v: unknown) => typeof v === 'function';

/** Validates engine options before anything runs: every problem is a `CG_CONFIG_INVALID` error. */
export function validateOptions(o: ReleaseEngineOptions): void {
  need(o && typeof o === 'object', 'createReleaseEngine needs an options object');
  checkIdentifier(o.environment, 'environment');
  const t = o.target;
  need(t && typeof t.name === 'string', 'target is required: pass localTarget(...) or another Target');
  need(
    isFn(t.describe) && isFn(t.provision) && isFn(t.retire),
    `target ${t.name} must implement describe, provision and retire`,
  );
  const s = o.strategy;
  need(
    s && typeof s.name === 'string',
    'strategy is required: pass rolling(), canary(...) or blueGreen(...)',
  );
  need(isFn(s.deploy) && isFn(s.undo), `strategy ${s.name} must implement deploy and undo`);
  for (const cap of s.requires ?? []) {
    need(
      isFn((t as unknown as Record<string, unknown>)[cap]),
      `strategy ${s.name} needs target capability "${cap}", which target ${t.name} lacks`,
    );
  }
  const st = o.store;
  need(
    st && isFn(st.append) && isFn(st.lock) && isFn(st.read),
    'store is required: pass fileStore({ dir }) or another Store',
  );
  const names = new Set<string>();
  for (const v of o.verifiers ?? []) {
    need(
      v && typeof v.name === 'string' && isFn(v.verify),
      'every verifier needs a name and a verify function',
    );
    need(!names.has(v.name), `two verifiers are named "${v.name}"; names must be unique`);
    names.add(v.name);
  }
  for (const n of o.notifiers ?? [])
    need(
      n && typeof n.name === 'string' && isFn(n.notify),
      'every notifier needs a name and a notify function',
    );
  if (o.backup) {
    const b = o.backup;
    need(
      isFn(b.create) && isFn(b.list) && isFn(b.verify) && isFn(b.restore),
      `backup ${b.name} must implement create, list, verify and restore`,
    );
  }
  if (o.replicas !== undefined) checkReplicas(o.replicas, 'replicas');
  for (const v of o.knownVersions ?? []) checkVersion(v, 'knownVersions entry');
  for (const s2 of o.secrets ?? []) need(typeof s2 === 'string', 'secrets must be strings');
  if (o.databaseRollback !== undefined) need(isFn(o.databaseRollback), 'databaseRollback must be a function');
  if (o.artifacts !== undefined) checkArtifactOptions(o.artifacts);
  if (o.migrations !== undefined) checkCatalog(o.migrations);
  if (o.recovery !== undefined) {
    const r = o.recovery;
    need(r && typeof r === 'object', 'recovery must be an object');
    need(r.stop === undefined || isFn(r.stop), 'recovery.stop must be a function');
    need(r.start === undefined || isFn(r.start), 'recovery.start must be a function');
    need(
      r.data === undefined ||
        (Array.isArray(r.data) && r.data.every((x) => typeof x === 'string' && x !== '')),
      'recovery.data must be directory paths',
    );
    need(
      r.integrity === undefined || ['presence', 'checksum', 'scan'].includes(r.integrity),
      'recovery.integrity must be presence, checksum or scan',
    );
  }
  if (o.deadlines !== undefined) {
    need(o.deadlines && typeof o.deadlines === 'object', 'deadlines must be an object of milliseconds');
    for (const [k, v] of Object.entries(o.deadlines)) {
      need(
        k in pluginDeadlineDefaults,
        `deadlines.${k} is not an option (known: ${Object.keys(pluginDeadlineDefaults).join(', ')})`,
      );
      need(
        v === undefined || (typeof v === 'number' && Number.isFinite(v) && v > 0),
        `deadlines.${k} must be a number of milliseconds > 0, got ${String(v)}`,
      );
    }
  }
  const delivery = o.delivery?.timeoutMs;
  need(
    delivery === undefined || (typeof delivery === 'number' && Number.isFinite(delivery) && delivery > 0),
    `delivery.timeoutMs must be a number of milliseconds > 0, got ${String(delivery)}`,
  );
  if (o.manifestDir !== undefined)
    need(typeof o.manifestDir === 'string' && o.manifestDir !== '', 'manifestDir must be a directory path');
}
