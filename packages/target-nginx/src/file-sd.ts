import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { PoolState } from '@codegraph/release-core';
import { writeAtomic } from './state.js';

/** One Prometheus `file_sd` target group. */
export interface FileSdGroup {
  targets: string[];
  labels: { pool: string; version: string };
}

/** One group per pool, listing every ready replica as `host:port`, sorted so the file only changes with the pools. */
export function fileSdGroups(pools: PoolState[]): FileSdGroup[] {
  return pools
    .filter((p) => p.endpoints.length > 0)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((p) => ({
      targets: p.endpoints.map((e) => new URL(e).host).sort(),
      labels: { pool: p.name, version: p.version },
    }));
}

/** Writes the `file_sd` JSON atomically when its content changes; Prometheus picks the rename up. */
export async function writeFileSd(file: string, groups: FileSdGroup[]): Promise<void> {
  const content = `${JSON.stringify(groups, null, 2)}\n`;
  if ((await readFile(file, 'utf8').catch(() => undefined)) === content) return;
  await mkdir(path.dirname(file), { recursive: true });
  await writeAtomic(file, content);
}
