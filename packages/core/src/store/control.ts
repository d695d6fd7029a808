import { randomBytes } from 'node:crypto';
import { ControlInvalidError } from '../errors.js';
import { checkIdentifier } from '../rules.js';
import type { ControlAction, ControlReply, ControlRequest, ControlRequestInput } from './types.js';

// The rules every store applies to control requests, when they are sent and again when they are read
// back (a request is data from another process: it is never trusted unchecked).

/** The limits of a control request, in one place for every store. */
export const controlLimits = Object.freeze({
  /** Request ids: `[A-Za-z0-9_-]`, this many characters at least... */
  idMinLength: 8,
  /** ...and at most. */
  idMaxLength: 64,
  /** `reason` and a reply's `message`. */
  reasonMaxLength: 1_000,
  /** `subject` of an approval (`production@v1.2.3`). */
  subjectMaxLength: 200,
  /** A stored request or reply larger than this is refused unread. */
  recordMaxBytes: 16 * 1024,
});

/** Every action a control request may carry. Anything else is refused, never read as an abort. */
export const controlActions: readonly ControlAction[] = Object.freeze([
  'promote',
  'abort',
  'approve',
  'supersede',
]);

const idPattern = /^[A-Za-z0-9_-]{8,64}$/;
const subjectPattern = /^[A-Za-z0-9][A-Za-z0-9._+@:/-]*$/;
// Control characters other than tab and newline: they would rewrite a terminal or a log line.
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
const controlChars = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const requestKeys = new Set([
  'id',
  'environment',
  'runId',
  'action',
  'full',
  'reason',
  'by',
  'subject',
  'createdAt',
]);
const replyKeys = new Set(['id', 'runId', 'action', 'applied', 'message', 'at']);

function refuse(message: string): never {
  throw new ControlInvalidError(`control request refused: ${message}`, { plugin: 'store' });
}

const show = (v: unknown) => {
  const text = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

/** Core's identifier rule, refused as `CG_CONTROL_INVALID`. */
function identifier(value: unknown, what: string): string {
  try {
    return checkIdentifier(value, what);
  } catch (err) {
    refuse((err as Error).message);
  }
}

function text(value: unknown, what: string, max: number): string {
  if (typeof value !== 'string') refuse(`${what} must be a string`);
  if (value.length > max) refuse(`${what} is ${value.length} characters; at most ${max}`);
  if (controlChars.test(value)) refuse(`${what} holds control characters`);
  return value;
}

/** Whether a string is a valid control request id (`[A-Za-z0-9_-]{8,64}`). */
export function isControlId(value: unknown): value is string {
  return typeof value === 'string' && idPattern.test(value);
}

/**
 * Checks a control request id, so it can name a file or a row. Throws `CG_CONTROL_INVALID`.
 *
 * @example
 * ```ts
 * checkControlId(request.id) // '0001764856800000-0001-a1b2c3d4e5f6'
 * ```
 */
export function checkControlId(value: unknown): string {
  if (!isControlId(value)) refuse(`id ${show(value)} is not 8-64 letters, digits, '_' or '-'`);
  return value;
}

/**
 * Checks a control request before it is stored, and returns it with only the known fields.
 * Throws `CG_CONTROL_INVALID`: unknown action, bad identifiers, oversized or control-character text.
 *
 * @example
 * ```ts
 * const input = checkControlInput({ environment: 'production', action: 'promote', full: true })
 * ```
 */
export function checkControlInput(value: unknown): ControlRequestInput {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) refuse('it is not an object');
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) {
    if (!requestKeys.has(key) || key === 'id' || key === 'createdAt') refuse(`unknown field ${show(key)}`);
  }
  return checkFields(v);
}

function checkFields(v: Record<string, unknown>): ControlRequestInput {
  const action = v.action;
  if (typeof action !== 'string' || !(controlActions as readonly string[]).includes(action)) {
    refuse(`unknown action ${show(action)} (one of ${controlActions.join(', ')})`);
  }
  const out: ControlRequestInput = {
    environment: identifier(v.environment, 'environment'),
    action: action as ControlAction,
  };
  if (v.runId !== undefined) out.runId = identifier(v.runId, 'runId');
  if (v.full !== undefined) {
    if (typeof v.full !== 'boolean') refuse('full must be true or false');
    if (action !== 'promote' && v.full) refuse(`full applies to promote only, not ${action}`);
    out.full = v.full;
  }
  if (v.reason !== undefined) out.reason = text(v.reason, 'reason', controlLimits.reasonMaxLength);
  if (v.by !== undefined) out.by = identifier(v.by, 'by');
  if (v.subject !== undefined) {
    const subject = text(v.subject, 'subject', controlLimits.subjectMaxLength);
    if (!subjectPattern.test(subject))
      refuse(`subject ${show(subject)} is not valid (e.g. production@v1.2.3)`);
    out.subject = subject;
  }
  return out;
}

/**
 * Checks a control request read back from storage. `expect` pins the fields the reader already knows
 * (the id its file or row is named by, the environment it watches). Throws `CG_CONTROL_INVALID`.
 *
 * @example
 * ```ts
 * const request = checkControlRequest(JSON.parse(text), { id: nameWithoutJson, environment })
 * ```
 */
export function checkControlRequest(
  value: unknown,
  expect: { id?: string; environment?: string } = {},
): ControlRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) refuse('it is not an object');
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) if (!requestKeys.has(key)) refuse(`unknown field ${show(key)}`);
  const id = checkControlId(v.id);
  if (expect.id !== undefined && id !== expect.id)
    refuse(`id ${show(id)} does not match its record ${show(expect.id)}`);
  const fields = checkFields(v);
  if (expect.environment !== undefined && fields.environment !== expect.environment) {
    refuse(`environment ${show(fields.environment)} is not ${show(expect.environment)}`);
  }
  if (typeof v.createdAt !== 'string' || !Number.isFinite(Date.parse(v.createdAt)))
    refuse('createdAt is not a time');
  return { id, ...fields, createdAt: v.createdAt };
}

/**
 * Checks a control reply read back from storage. Throws `CG_CONTROL_INVALID`.
 *
 * @example
 * ```ts
 * const reply = checkControlReply(JSON.parse(text), id)
 * ```
 */
export function checkControlReply(value: unknown, id: string): ControlReply {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) refuse('reply is not an object');
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) if (!replyKeys.has(key)) refuse(`unknown reply field ${show(key)}`);
  if (v.id !== id) refuse(`reply id ${show(v.id)} is not ${show(id)}`);
  const action = v.action;
  if (
    action !== undefined &&
    (typeof action !== 'string' || !(controlActions as readonly string[]).includes(action))
  ) {
    refuse(`reply action ${show(action)} is unknown`);
  }
  if (typeof v.applied !== 'boolean') refuse('reply applied is not true or false');
  if (typeof v.at !== 'string' || !Number.isFinite(Date.parse(v.at))) refuse('reply time is not a time');
  const reply: ControlReply = { id, applied: v.applied, at: v.at };
  if (action !== undefined) reply.action = action as ControlAction;
  if (v.runId !== undefined) reply.runId = identifier(v.runId, 'reply runId');
  if (v.message !== undefined)
    reply.message = text(v.message, 'reply message', controlLimits.reasonMaxLength);
  return reply;
}

/** A reply message cut to the limit, control characters replaced: what a handler said is not trusted either. */
export function replyMessage(message: string | undefined): string | undefined {
  if (message === undefined) return undefined;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing them is the point
  const clean = message.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?');
  return clean.length > controlLimits.reasonMaxLength
    ? `${clean.slice(0, controlLimits.reasonMaxLength - 3)}...`
    : clean;
}

let counter = 0;

/**
 * A new control request id whose sort order is the send order within a process (and the millisecond
 * across processes): 13 digits of milliseconds, a per-process counter, 12 random hex digits.
 *
 * @example
 * ```ts
 * const id = newControlId() // '1764856800000-0001-a1b2c3d4e5f6'
 * ```
 */
export function newControlId(): string {
  counter = (counter + 1) % 36 ** 4;
  return `${String(Date.now()).padStart(13, '0')}-${counter.toString(36).padStart(4, '0')}-${randomBytes(6).toString('hex')}`;
}
