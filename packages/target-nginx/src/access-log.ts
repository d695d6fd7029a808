import type { PoolTraffic } from '@codegraph/release-core';
import { readFrom } from './nginx.js';

/** Latency samples kept per pool, most recent last (as the local proxy does). */
export const latencyRing = 1024;

/** One access log line, as written by the `codegraph` log format. */
export interface AccessLine {
  /** Seconds since the epoch, with milliseconds. */
  time: number;
  pool: string;
  status: number;
  /** `$request_time` in milliseconds. */
  requestMs: number;
}

/** Parses `$msec \t $codegraph_pool \t $upstream_addr \t $status \t $upstream_status \t $upstream_response_time \t $request_time`. */
export function parseLine(line: string): AccessLine | undefined {
  const f = line.split('\t');
  if (f.length < 7) return undefined;
  const time = Number(f[0]);
  const status = Number(f[3]);
  const requestMs = Number(f[6]) * 1000;
  if (!Number.isFinite(time) || !Number.isInteger(status) || !Number.isFinite(requestMs)) return undefined;
  return { time, pool: f[1] ?? '', status, requestMs };
}

/**
 * A pool's figures from the access log since `offset`: requests answered by the pool, errors (5xx, which
 * includes 502/504 when every upstream failed), and `$request_time` samples in milliseconds.
 */
export async function poolTraffic(
  file: string,
  pool: string,
  offset: number,
  since: string,
): Promise<PoolTraffic> {
  const text = await readFrom(file, offset);
  const figures: PoolTraffic = { pool, requests: 0, errors: 0, latencyMs: [], since };
  // A line still being written has no newline yet: leave it for the next read.
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  for (const raw of complete.split('\n')) {
    const line = parseLine(raw);
    if (!line || line.pool !== pool) continue;
    figures.requests++;
    if (line.status >= 500) figures.errors++;
    figures.latencyMs.push(Math.round(line.requestMs * 1000) / 1000);
  }
  if (figures.latencyMs.length > latencyRing) figures.latencyMs = figures.latencyMs.slice(-latencyRing);
  return figures;
}
