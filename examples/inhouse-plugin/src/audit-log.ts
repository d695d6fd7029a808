import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  ConfigInvalidError,
  type Notifier,
  NotifyFailedError,
  type OperationContext,
  type ReleaseEvent,
  type ReleaseEventType,
} from '@codegraph/release-core';

/** Options of {@link auditLog}. */
export interface AuditLogOptions {
  /** The JSON-lines file records are appended to; created (with its directory) if missing. */
  file: string;
  /**
   * The HMAC-SHA256 key that chains the records: whoever edits, drops or reorders a line without it is
   * caught by {@link verifyAuditLog}. A secret: it never appears in a record, an error or a log line.
   */
  signingKey: string;
  /** The notifier's name in logs and `notification.failed` events. @default 'audit-log' */
  name?: string;
  /** Event types to record. @default every type */
  events?: ReadonlyArray<ReleaseEventType>;
  /** Flush every record to disk before `notify` resolves. @default true */
  fsync?: boolean;
}

/** Defaults of {@link AuditLogOptions}, in one place. */
export const auditLogDefaults = Object.freeze({ name: 'audit-log', fsync: true });

/** One line of the audit log. */
export interface AuditRecord {
  /** 1, 2, 3, ... across every process that appended to the file. */
  seq: number;
  /** When the record was written (ISO). */
  at: string;
  event: ReleaseEvent;
  /** The previous record's `mac` (`''` for the first record). */
  prev: string;
  /** HMAC-SHA256 (hex) of `seq`, `at`, `prev` and the event. */
  mac: string;
}

/** What {@link verifyAuditLog} found. */
export interface AuditVerification {
  ok: boolean;
  /** Records whose chain holds, from the first. */
  records: number;
  /** The first broken line (1-based) and why, when `ok` is false. */
  problem?: { line: number; reason: string };
}

const macOf = (key: string, r: Omit<AuditRecord, 'mac'>) =>
  createHmac('sha256', key)
    .update(JSON.stringify([r.seq, r.at, r.prev, r.event]))
    .digest('hex');

function checkOptions(o: AuditLogOptions): void {
  if (!o || typeof o.file !== 'string' || o.file === '') {
    throw new ConfigInvalidError('auditLog: file must be a path', { plugin: 'audit-log' });
  }
  if (typeof o.signingKey !== 'string' || o.signingKey.length < 16) {
    throw new ConfigInvalidError('auditLog: signingKey must be a string of at least 16 characters', {
      plugin: 'audit-log',
    });
  }
}

/** The last record of the file, to continue its chain; undefined when the file is new or empty. */
async function lastRecord(file: string): Promise<AuditRecord | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const last = lines.at(-1);
  return last === undefined ? undefined : (JSON.parse(last) as AuditRecord);
}

/**
 * A notifier that appends every release event to a tamper-evident audit log: one JSON line per event,
 * each carrying an HMAC of the previous one, so an edited, dropped or reordered line is detected by
 * {@link verifyAuditLog}. Appends are serialized, fsynced, and continue the chain a previous process
 * left in the file. Events arrive redacted by the engine; the signing key is never written anywhere.
 *
 * @example
 * ```ts
 * import { createReleaseEngine } from '@codegraph/release-core'
 * import { auditLog } from '@acme/release-audit-log'
 *
 * const engine = createReleaseEngine({
 *   ...options,
 *   notifiers: [auditLog({ file: '/var/log/codegraph/releases.jsonl', signingKey: process.env.AUDIT_KEY! })],
 * })
 * ```
 */
export function auditLog(options: AuditLogOptions): Notifier & { close(): Promise<void> } {
  checkOptions(options);
  const { file, signingKey } = options;
  const name = options.name ?? auditLogDefaults.name;
  const fsync = options.fsync ?? auditLogDefaults.fsync;
  let tail: Promise<unknown> = Promise.resolve();
  let head: { seq: number; mac: string } | undefined;

  async function append(event: ReleaseEvent, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    try {
      if (!head) {
        await mkdir(dirname(file), { recursive: true });
        const last = await lastRecord(file);
        head = { seq: last?.seq ?? 0, mac: last?.mac ?? '' };
      }
      signal?.throwIfAborted();
      const record: Omit<AuditRecord, 'mac'> = {
        seq: head.seq + 1,
        at: new Date().toISOString(),
        prev: head.mac,
        event,
      };
      const line: AuditRecord = { ...record, mac: macOf(signingKey, record) };
      const handle = await open(file, 'a');
      try {
        await handle.write(`${JSON.stringify(line)}\n`);
        if (fsync) await handle.datasync();
      } finally {
        await handle.close();
      }
      head = { seq: line.seq, mac: line.mac };
    } catch (err) {
      if (signal?.aborted && err === signal.reason) throw err;
      // The cause keeps the file system's own words (a path, an errno); the key is never in them.
      throw new NotifyFailedError(`${name}: could not append ${event.type} to ${file}`, {
        cause: err,
        plugin: name,
      });
    }
  }

  return {
    name,
    ...(options.events ? { events: options.events } : {}),
    notify(event: ReleaseEvent, ctx: OperationContext = {}): Promise<void> {
      if (ctx.signal?.aborted) return Promise.reject(ctx.signal.reason);
      const run = tail.then(() => append(event, ctx.signal));
      tail = run.catch(() => {});
      return run;
    },
    async close() {
      await tail;
    },
  };
}

/**
 * Checks an audit log's chain with its signing key: every line parses, numbers follow, each `prev` is
 * the line before's `mac`, and each `mac` is right.
 *
 * @example
 * ```ts
 * const check = await verifyAuditLog('/var/log/codegraph/releases.jsonl', process.env.AUDIT_KEY!)
 * if (!check.ok) throw new Error(`audit log tampered with at line ${check.problem?.line}: ${check.problem?.reason}`)
 * ```
 */
export async function verifyAuditLog(file: string, signingKey: string): Promise<AuditVerification> {
  const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim() !== '');
  let prev = '';
  for (const [i, text] of lines.entries()) {
    const fail = (reason: string): AuditVerification => ({
      ok: false,
      records: i,
      problem: { line: i + 1, reason },
    });
    let r: AuditRecord;
    try {
      r = JSON.parse(text) as AuditRecord;
    } catch {
      return fail('not JSON');
    }
    if (r.seq !== i + 1) return fail(`sequence ${r.seq}, expected ${i + 1}`);
    if (r.prev !== prev) return fail('does not follow the line before');
    const want = Buffer.from(macOf(signingKey, r), 'hex');
    const got = Buffer.from(String(r.mac), 'hex');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return fail('MAC does not match');
    prev = r.mac;
  }
  return { ok: true, records: lines.length };
}
