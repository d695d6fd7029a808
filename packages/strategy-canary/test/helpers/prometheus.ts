import { rename, writeFile } from 'node:fs/promises';
import { codegraphSlo, type PrometheusMetric, type Target } from '@codegraph/release-core';
import {
  type RunningPrometheus as CoreRunningPrometheus,
  startPrometheus as startCorePrometheus,
} from '../../../core/test/helpers/prometheus.js';

/** A real Prometheus scraping, every 1 s, the targets listed in its file_sd file (`fileSd`). */
export type RunningPrometheus = CoreRunningPrometheus & { fileSd: string };

/** Starts Debian's `prometheus` on a free loopback port with one file_sd job (`fileSd`, created empty when not given). */
export async function startPrometheus(fileSd?: string): Promise<RunningPrometheus> {
  const prom = await startCorePrometheus(fileSd ? { fileSd } : {});
  return { ...prom, fileSd: prom.fileSd! };
}

/** Writes the target's replicas as file_sd targets labelled with their pool and version (atomically). */
export async function writeFileSd(file: string, target: Target): Promise<void> {
  const { pools } = await target.describe();
  const groups = pools.map((p) => ({
    targets: p.endpoints.map((e) => new URL(e).host),
    labels: { pool: p.name, version: p.version },
  }));
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(groups)}\n`);
  await rename(tmp, file);
}

const meanLatency = (sel: string, window: string) =>
  `sum(rate(http_request_duration_seconds_sum{${sel}}[${window}])) / sum(rate(http_request_duration_seconds_count{${sel}}[${window}]))`;

/**
 * What the Prometheus scenarios judge per pool: the pool's mean latency over the other pools' (a shared
 * test machine moves absolute latency with its load; a 5x slower canary is 4x or more) and the seed's 5xx
 * share, from the sample service's own metrics scraped by Prometheus.
 */
export const relativeSlo = (): PrometheusMetric[] => [
  {
    name: 'latency_mean_ratio',
    query: `(${meanLatency('pool="{{pool}}"', '10s')}) / (${meanLatency('pool!="{{pool}}"', '10s')})`,
    threshold: { max: 2.5 },
  },
  // A window long enough to hold the canary's requests: the rate fails once they show it past 2 %.
  ...codegraphSlo({ window: '30s', maxErrorRate: 0.02 }).filter((m) => m.name === 'error_rate'),
];
