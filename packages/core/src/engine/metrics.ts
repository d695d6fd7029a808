import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Options of the engine's metrics. */
export interface MetricsOptions {
  /**
   * The prom-client registry to register on: pass one to put the engine's metrics beside your own (two
   * engines on one registry share the metrics, labelled by environment).
   * @default a private `new Registry()` per engine (never prom-client's global one), read back as
   * `engine.registry`
   */
  registry?: Registry;
  /** Prefix of every metric name. @default 'codegraph_release_' */
  prefix?: string;
}

/** The engine's prom-client metrics. Two engines on one registry share them (labelled by environment). */
export interface ReleaseMetrics {
  /** The registry the metrics are registered on (the caller's, or the engine's private one). */
  registry: Registry;
  runs: Counter<'environment' | 'kind' | 'status'>;
  phaseSeconds: Histogram<'environment' | 'phase'>;
  rollbacks: Counter<'environment' | 'reason'>;
  weight: Gauge<'environment' | 'pool'>;
  verdicts: Counter<'environment' | 'verdict'>;
  notificationFailures: Counter<'environment' | 'notifier'>;
  backups: Counter<'environment' | 'outcome'>;
  /** Plugin calls the engine stopped waiting for (deadline passed, or the run was aborted). */
  abandonedCalls: Counter<'environment' | 'kind' | 'plugin' | 'method'>;
}

function getOrCreate<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/**
 * The engine's metrics on `options.registry`, or on a private registry of their own.
 *
 * @example
 * ```ts
 * const metrics = createReleaseMetrics({ registry: new Registry() })
 * metrics.runs.inc({ environment: 'staging', kind: 'release', status: 'succeeded' })
 * ```
 */
export function createReleaseMetrics(options: MetricsOptions = {}): ReleaseMetrics {
  const registry = options.registry ?? new Registry();
  const p = options.prefix ?? 'codegraph_release_';
  const registers = [registry];
  return {
    registry,
    runs: getOrCreate(
      registry,
      `${p}runs_total`,
      () =>
        new Counter({
          name: `${p}runs_total`,
          help: 'Runs by kind and outcome',
          labelNames: ['environment', 'kind', 'status'],
          registers,
        }),
    ),
    phaseSeconds: getOrCreate(
      registry,
      `${p}phase_duration_seconds`,
      () =>
        new Histogram({
          name: `${p}phase_duration_seconds`,
          help: 'Duration of each engine phase',
          labelNames: ['environment', 'phase'],
          buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800],
          registers,
        }),
    ),
    rollbacks: getOrCreate(
      registry,
      `${p}rollbacks_total`,
      () =>
        new Counter({
          name: `${p}rollbacks_total`,
          help: 'Automatic and emergency rollbacks',
          labelNames: ['environment', 'reason'],
          registers,
        }),
    ),
    weight: getOrCreate(
      registry,
      `${p}traffic_weight`,
      () =>
        new Gauge({
          name: `${p}traffic_weight`,
          help: 'Current traffic weight per pool, percent',
          labelNames: ['environment', 'pool'],
          registers,
        }),
    ),
    verdicts: getOrCreate(
      registry,
      `${p}analysis_verdicts_total`,
      () =>
        new Counter({
          name: `${p}analysis_verdicts_total`,
          help: 'Analysis gate verdicts',
          labelNames: ['environment', 'verdict'],
          registers,
        }),
    ),
    notificationFailures: getOrCreate(
      registry,
      `${p}notification_failures_total`,
      () =>
        new Counter({
          name: `${p}notification_failures_total`,
          help: 'Notifications that could not be delivered',
          labelNames: ['environment', 'notifier'],
          registers,
        }),
    ),
    backups: getOrCreate(
      registry,
      `${p}backups_total`,
      () =>
        new Counter({
          name: `${p}backups_total`,
          help: 'Backups taken by the engine',
          labelNames: ['environment', 'outcome'],
          registers,
        }),
    ),
    abandonedCalls: getOrCreate(
      registry,
      `${p}plugin_calls_abandoned_total`,
      () =>
        new Counter({
          name: `${p}plugin_calls_abandoned_total`,
          help: 'Plugin calls the engine stopped waiting for: their deadline passed or the run was aborted',
          labelNames: ['environment', 'kind', 'plugin', 'method'],
          registers,
        }),
    ),
  };
}
