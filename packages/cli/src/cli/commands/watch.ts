import type { JournalEntry, RunStatus, Store } from '@codegraph/release-core';
import { exitCodeOfRun, exitCodes } from '../exit.js';
import type { Output } from '../output.js';

/** How `status --watch` polls: every `intervalMs`, for at most `timeoutMs`. */
export interface WatchOptions {
  intervalMs: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const scalar = (v: unknown): string =>
  typeof v === 'number' || typeof v === 'boolean' || v === null ? String(v) : JSON.stringify(String(v ?? ''));

/**
 * One journal entry as a line, or nothing. What the journal holds was written by another process and
 * is read back here: every field is checked for its type before it is shown (never trusted raw).
 */
export function renderEntry(e: JournalEntry): string | undefined {
  switch (e.type) {
    case 'step-started': {
      const input = e.input as { type?: unknown; name?: unknown } | undefined;
      const what = str(input?.type);
      return what ? `    ${e.key}: ${what}${str(input?.name) ? ` ${str(input?.name)}` : ''} ...` : undefined;
    }
    case 'step-finished': {
      const r = e.result as { verdict?: unknown; reason?: unknown; name?: unknown } | null;
      const verdict = str(r?.verdict);
      return verdict
        ? `    analysis ${str(r?.name) ?? e.key}: ${verdict.toUpperCase()} (${str(r?.reason) ?? ''})`
        : `    ${e.key}: done`;
    }
    case 'step-failed':
      return `    ${e.key}: failed: ${str(e.error?.code) ?? 'CG_ERROR'}: ${str(e.error?.message) ?? ''}`;
    case 'note': {
      if (e.message !== 'analysis.measured') return `    note: ${e.message}`;
      const d = (e.data ?? {}) as Record<string, unknown>;
      const gate = str(d.gate);
      const metric = str(d.metric);
      const verdict = str(d.verdict);
      if (!gate || !metric || !verdict) return undefined;
      const round = typeof d.round === 'number' && Number.isInteger(d.round) ? d.round + 1 : '?';
      const facts = [
        d.limit !== undefined ? `limit ${scalar(d.limit)}` : undefined,
        typeof d.samples === 'number' ? `n=${d.samples}` : undefined,
      ].filter(Boolean);
      return `      measured ${gate} #${round} ${metric}: ${scalar(d.value)}${facts.length ? ` (${facts.join(', ')})` : ''} ${verdict}`;
    }
    case 'finished':
      return `  finished: ${e.status}${e.serving ? `, ${e.serving} serves` : ''}${e.reason ? ` (${e.reason})` : ''}`;
    case 'run':
      return `[${e.header.environment}] ${e.header.kind} ${e.header.version}${e.header.from ? ` (from ${e.header.from})` : ''}: run ${e.header.runId}`;
  }
}

const statuses: readonly RunStatus[] = ['succeeded', 'rolled-back', 'failed', 'superseded'];

/**
 * Follows a run from another shell: polls its journal in the store and prints each new entry as it
 * appears (measurements included), until the run finishes or `timeoutMs` passes. Returns the exit code
 * of the run's status, or `locked` (the run still holds the environment) when the watch timed out first.
 */
export async function watchRun(store: Store, runId: string, out: Output, o: WatchOptions): Promise<number> {
  const deadline = Date.now() + o.timeoutMs;
  let seen = -1;
  for (;;) {
    const entries = await store.read(runId);
    for (const e of entries) {
      if (typeof e.seq !== 'number' || e.seq <= seen) continue;
      seen = e.seq;
      const text = renderEntry(e);
      if (text !== undefined) out.line(text);
      out.json({ type: 'journal', runId, entry: e });
      if (e.type === 'finished' && statuses.includes(e.status)) return exitCodeOfRun(e.status);
    }
    if (Date.now() + o.intervalMs > deadline || o.signal?.aborted) {
      out.warn(`stopped watching run ${runId} after ${Math.round(o.timeoutMs / 1000)}s; it has not finished`);
      return exitCodes.locked;
    }
    await new Promise((ok) => setTimeout(ok, o.intervalMs));
  }
}
