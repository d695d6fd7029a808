import type { PoolTraffic } from '@codegraph/release-core';
import { readFrom, sizeOf } from './nginx.js';

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

/** Counts one pool's lines in a chunk of the log (complete lines only) into `figures`. */
function count(figures: PoolTraffic, pool: string, text: string): void {
  for (const raw of text.split('\n')) {
    const line = parseLine(raw);
    if (!line || line.pool !== pool) continue;
    figures.requests++;
    if (line.status >= 500) figures.errors++;
    figures.latencyMs.push(Math.round(line.requestMs * 1000) / 1000);
  }
  if (figures.latencyMs.length > latencyRing) figures.latencyMs = figures.latencyMs.slice(-latencyRing);
}

/**
 * Per-pool figures from the access log: requests answered by the pool, errors (5xx, which includes 502/504
 * when every upstream failed), and `$request_time` samples in milliseconds. Each call reads only what the
 * log gained since the last call for the same pool and reset point.
 */
export class TrafficReader {
  private readonly cache = new Map<string, { from: number; read: number; figures: PoolTraffic }>();

  constructor(private readonly file: string) {}

  async figures(pool: string, from: number, since: string): Promise<PoolTraffic> {
    let entry = this.cache.get(pool);
    const size = await sizeOf(this.file);
    // A new reset point, or a log that was truncated or rotated, starts over.
    if (!entry || entry.from !== from || entry.figures.since !== since || size < entry.read) {
      entry = {
        from,
        read: size < from ? 0 : from,
        figures: { pool, requests: 0, errors: 0, latencyMs: [], since },
      };
      this.cache.set(pool, entry);
    }
    const text = await readFrom(this.file, entry.read);
    // A line still being written has no newline yet: leave it for the next read.
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    count(entry.figures, pool, complete);
    entry.read += Buffer.byteLength(complete);
    const f = entry.figures;
    return { pool, requests: f.requests, errors: f.errors, latencyMs: [...f.latencyMs], since: f.since };
  }
}
