import {
  ConfigInvalidError,
  type ControlAction,
  ControlInvalidError,
  type ControlRequestInput,
  type Fence,
  type HistoryEntry,
  type JournalEntry,
  type JournalEntryInput,
  type LockOwner,
  StoreError,
} from '@codegraph/release-core';
import { checkIdentifier } from '@codegraph/release-core/kit';
import { plugin } from './errors.js';

const ctx = { plugin };
export const controlActions: readonly ControlAction[] = ['promote', 'abort', 'approve', 'supersede'];
const entryTypes = new Set(['run', 'step-started', 'step-finished', 'step-failed', 'note', 'finished']);
const controlIdPattern = /^[A-Za-z0-9_-]{8,64}$/;
const subjectPattern = /^[A-Za-z0-9][A-Za-z0-9._+@:/-]{0,199}$/;
export const reasonMaxLength = 1_000;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isTime = (v: unknown): v is string =>
  typeof v === 'string' && v.length <= 64 && !Number.isNaN(Date.parse(v));

export const environmentOf = (value: unknown) => checkIdentifier(value, 'environment', ctx);
export const runIdOf = (value: unknown) => checkIdentifier(value, 'run id', ctx);

/** JSON text of a value, refusing what JSON cannot hold or what is larger than `max` bytes. */
export function toJson(value: unknown, what: string, max: number): string {
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new ConfigInvalidError(`${what} cannot be stored: it is not JSON-safe (${String(err)})`, ctx);
  }
  if (typeof text !== 'string') throw new ConfigInvalidError(`${what} cannot be stored: it is not JSON`, ctx);
  if (Buffer.byteLength(text) > max) {
    throw new ConfigInvalidError(
      `${what} is larger than ${max} bytes of JSON; keep large data out of it`,
      ctx,
    );
  }
  return text;
}

export function checkFence(fence: Fence | undefined, environment?: string): Fence | undefined {
  if (fence === undefined) return undefined;
  if (!isObject(fence)) throw new ConfigInvalidError('fence must be { environment, token }', ctx);
  environmentOf(fence.environment);
  if (typeof fence.token !== 'number' || !Number.isSafeInteger(fence.token) || fence.token < 1) {
    throw new ConfigInvalidError(`fence token must be a positive integer, got ${String(fence.token)}`, ctx);
  }
  if (environment !== undefined && fence.environment !== environment) {
    throw new ConfigInvalidError(
      `fence is for environment ${fence.environment}, not ${environment}: a write is fenced by its own environment's lease`,
      ctx,
    );
  }
  return fence;
}

export function checkOwner(owner: LockOwner): LockOwner {
  if (!isObject(owner)) throw new ConfigInvalidError('lock owner must be an object', ctx);
  runIdOf(owner.runId);
  if (!Number.isSafeInteger(owner.pid) || owner.pid < 0) {
    throw new ConfigInvalidError('lock owner pid must be a non-negative integer', ctx);
  }
  if (typeof owner.host !== 'string' || owner.host.length === 0 || owner.host.length > 255) {
    throw new ConfigInvalidError('lock owner host must be 1-255 characters', ctx);
  }
  if (!isTime(owner.since)) throw new ConfigInvalidError('lock owner since must be an ISO time', ctx);
  if (
    owner.processStart !== undefined &&
    (typeof owner.processStart !== 'string' || owner.processStart.length > 64)
  ) {
    throw new ConfigInvalidError('lock owner processStart must be a string of at most 64 characters', ctx);
  }
  return owner;
}

/** Checks a journal entry before it is written; returns the run-header columns it carries. */
export function checkEntry(runId: string, entry: JournalEntryInput) {
  if (!isObject(entry) || typeof entry.type !== 'string' || !entryTypes.has(entry.type)) {
    throw new ConfigInvalidError(`journal entry type must be one of ${[...entryTypes].join(', ')}`, ctx);
  }
  if (entry.type === 'run') {
    const h = entry.header;
    if (!isObject(h) || h.runId !== runId) {
      throw new ConfigInvalidError(`a run header must be for run ${runId}`, ctx);
    }
    environmentOf(h.environment);
    if (!isTime(h.startedAt)) throw new ConfigInvalidError('run header startedAt must be an ISO time', ctx);
    if (typeof h.kind !== 'string' || typeof h.version !== 'string' || h.version.length > 200) {
      throw new ConfigInvalidError('run header needs a kind and a version', ctx);
    }
    return {
      environment: h.environment,
      kind: h.kind,
      version: h.version,
      startedAt: new Date(h.startedAt).toISOString(),
    };
  }
  if (entry.type.startsWith('step-') && typeof (entry as { key?: unknown }).key !== 'string') {
    throw new ConfigInvalidError(`a ${entry.type} entry needs a step key`, ctx);
  }
  if (entry.type === 'finished' && typeof entry.status !== 'string') {
    throw new ConfigInvalidError('a finished entry needs a status', ctx);
  }
  return undefined;
}

export function checkHistory(entry: HistoryEntry): HistoryEntry {
  if (!isObject(entry)) throw new ConfigInvalidError('history entry must be an object', ctx);
  runIdOf(entry.runId);
  if (typeof entry.version !== 'string' || typeof entry.status !== 'string' || !isObject(entry.verdicts)) {
    throw new ConfigInvalidError('history entry needs a version, a status and verdicts', ctx);
  }
  if (!isTime(entry.startedAt) || !isTime(entry.finishedAt)) {
    throw new ConfigInvalidError('history entry startedAt and finishedAt must be ISO times', ctx);
  }
  return entry;
}

/** Reads back one journal row; anything that is not what the store wrote is corruption. */
export function journalRow(
  runId: string,
  row: { seq: number; at: Date; type: string; entry: unknown },
): JournalEntry {
  const entry = row.entry;
  const bad = (why: string) =>
    new StoreError(`journal of run ${runId} is corrupt at entry ${row.seq}: ${why}`, { plugin });
  if (!isObject(entry) || entry.type !== row.type || !entryTypes.has(row.type)) throw bad('unknown entry');
  if (row.type === 'run' && (!isObject(entry.header) || entry.header.runId !== runId))
    throw bad('bad header');
  if (row.type.startsWith('step-') && typeof entry.key !== 'string') throw bad('no step key');
  if (row.type === 'finished' && typeof entry.status !== 'string') throw bad('no status');
  return { ...entry, seq: row.seq, time: row.at.toISOString() } as unknown as JournalEntry;
}

export function historyRow(environment: string, entry: unknown, id: number): HistoryEntry {
  if (
    !isObject(entry) ||
    typeof entry.runId !== 'string' ||
    typeof entry.version !== 'string' ||
    typeof entry.status !== 'string' ||
    !isObject(entry.verdicts)
  ) {
    throw new StoreError(`history of ${environment} is corrupt at entry ${id}`, { plugin });
  }
  return entry as unknown as HistoryEntry;
}

export function checkControlId(id: unknown): string {
  if (typeof id !== 'string' || !controlIdPattern.test(id)) {
    throw new ControlInvalidError(`control request id ${JSON.stringify(id)} is not valid`, ctx);
  }
  return id;
}

/**
 * Checks a control request, whether given to `sendControl` or read back from the table: the same rules
 * both ways, so a row written by hand or by a buggy client is refused, not acted on.
 */
export function checkControl(request: ControlRequestInput): ControlRequestInput {
  const invalid = (why: string) => new ControlInvalidError(`control request is not valid: ${why}`, ctx);
  if (!isObject(request)) throw invalid('it must be an object');
  // The store gives the id and the time; a request that brings its own is not one a client may send.
  if ('id' in request || 'createdAt' in request) throw invalid('id and createdAt are given by the store');
  if (!controlActions.includes(request.action)) {
    throw invalid(
      `action must be one of ${controlActions.join(', ')}, got ${JSON.stringify(request.action)}`,
    );
  }
  try {
    environmentOf(request.environment);
    if (request.runId !== undefined && request.runId !== null) runIdOf(request.runId);
    if (request.by !== undefined && request.by !== null) checkIdentifier(request.by, 'by', ctx);
  } catch (err) {
    throw invalid((err as Error).message);
  }
  if (request.full !== undefined && request.full !== null && typeof request.full !== 'boolean') {
    throw invalid('full must be a boolean');
  }
  if (request.full && request.action !== 'promote') throw invalid('full applies to promote only');
  if (request.reason !== undefined && request.reason !== null) {
    if (typeof request.reason !== 'string' || request.reason.length > reasonMaxLength) {
      throw invalid(`reason must be a string of at most ${reasonMaxLength} characters`);
    }
  }
  if (request.subject !== undefined && request.subject !== null) {
    if (typeof request.subject !== 'string' || !subjectPattern.test(request.subject)) {
      throw invalid('subject must be like "production@v1.2.3" (at most 200 characters)');
    }
  }
  return request;
}
