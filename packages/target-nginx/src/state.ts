import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Weights } from '@codegraph/release-core';
import { writeFileAtomic } from '@codegraph/release-core/kit';
import type { MasterRecord } from './nginx.js';

/** Where a pool's traffic figures start: a byte offset in the access log and its time. */
export interface TrafficMark {
  offset: number;
  since: string;
}

/** What `state.json` records, so a later instance adopts the running nginx. */
export interface NginxState {
  /** The port nginx listens on, fixed once chosen. */
  port?: number | undefined;
  /** The master nginx this target started. */
  master?: MasterRecord | undefined;
  /** The weights nginx routes (pools not named have 0). */
  weights: Weights;
  /** Reset points of the traffic figures, per pool; `*` applies to pools without their own. */
  marks: Record<string, TrafficMark>;
}

/** Reads and writes `state.json` atomically (temp file + rename). */
export class StateFile {
  readonly file: string;
  constructor(readonly dir: string) {
    this.file = path.join(dir, 'state.json');
  }

  async read(): Promise<NginxState> {
    const text = await readFile(this.file, 'utf8').catch(() => undefined);
    const parsed = text ? (JSON.parse(text) as Partial<NginxState>) : {};
    return { weights: {}, marks: {}, ...parsed };
  }

  async write(state: NginxState): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeAtomic(this.file, `${JSON.stringify(state, null, 2)}\n`);
  }

  async clear(): Promise<void> {
    await rm(this.file, { force: true });
  }
}

/** Writes a file so readers see either the old or the new content, never a partial one (core's kit). */
export const writeAtomic = (file: string, content: string): Promise<void> =>
  writeFileAtomic(file, content, { mode: 0o644 });
