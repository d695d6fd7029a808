import { ConfigInvalidError } from '../errors.js';
import { checkTimeZone, localToUtc, type Matcher, occurrences, parseCron, parseRRule } from './recurrence.js';

/**
 * When a stage's promotion may start. `allow` rules open windows (none at all: always open); `deny`
 * rules close them and win over every allow rule: a freeze is a deny rule with a reason. A rule is a
 * recurrence (`cron` or `rrule`, each start opening it for `durationMs`) or a span (`from`-`to`).
 * Every rule names its time zone; span times without an offset are read in that zone.
 *
 * @example
 * ```ts
 * const windows: WindowRule[] = [
 *   { action: 'allow', cron: '0 9 * * 1-4', durationMs: 7 * 3_600_000, timeZone: 'Europe/Berlin' },
 *   { action: 'deny', rrule: 'FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=0', durationMs: 86_400_000,
 *     timeZone: 'Europe/Berlin', reason: 'month-end close' },
 *   { action: 'deny', from: '2026-12-20', to: '2027-01-04', timeZone: 'Europe/Berlin', reason: 'year-end freeze' },
 * ]
 * ```
 */
export type WindowRule = {
  action: 'allow' | 'deny';
  /** An IANA time zone, e.g. `Europe/Berlin` or `UTC`. Required: there is no implicit zone. */
  timeZone: string;
  /** Why: shown while the rule blocks a promotion. Required for deny rules. */
  reason?: string;
} & (
  | { cron: string; durationMs: number }
  | { rrule: string; durationMs: number }
  | {
      /** ISO date or date-time; without an offset it is local time in `timeZone`. */
      from: string;
      /** ISO date or date-time (exclusive); without an offset it is local time in `timeZone`. */
      to: string;
    }
);

/** Whether a stage's promotion may start at an instant, and until when that holds. */
export interface WindowState {
  open: boolean;
  /** Why it is closed: a deny rule's reason, or that no allow window is open. */
  reason?: string | undefined;
  /** Closed: the earliest instant it opens (within a year). */
  opensAt?: Date | undefined;
  /** Open: when the current window ends (absent: open for at least a year). */
  closesAt?: Date | undefined;
}

interface Compiled {
  action: 'allow' | 'deny';
  reason: string;
  intervals(fromMs: number, toMs: number): Array<[number, number]>;
  lookbackMs: number;
}

const DAY = 86_400_000;
const HORIZON = 366 * DAY;
const CHUNK = 7 * DAY;

function parseInstant(text: unknown, timeZone: string, what: string): number {
  if (typeof text !== 'string') throw new ConfigInvalidError(`${what} must be an ISO date or date-time`);
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(text);
  if (!m) throw new ConfigInvalidError(`${what} "${text}" is not an ISO date or date-time`);
  if (m[7] !== undefined) {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) throw new ConfigInvalidError(`${what} "${text}" is not a valid time`);
    return ms;
  }
  return localToUtc(timeZone, +m[1]!, +m[2]!, +m[3]!, +(m[4] ?? 0), +(m[5] ?? 0));
}

/** Validates and compiles window rules; `CG_CONFIG_INVALID` naming the rule on any mistake. */
export function compileWindows(rules: readonly WindowRule[] | undefined, where: string): Compiled[] {
  if (rules === undefined) return [];
  if (!Array.isArray(rules)) throw new ConfigInvalidError(`${where}: windows must be an array of rules`);
  return rules.map((rule, i) => {
    const what = `${where}: windows[${i}]`;
    if (!rule || typeof rule !== 'object') throw new ConfigInvalidError(`${what} must be an object`);
    if (rule.action !== 'allow' && rule.action !== 'deny') {
      throw new ConfigInvalidError(`${what}: action must be "allow" or "deny"`);
    }
    const timeZone = checkTimeZone(rule.timeZone, what);
    if (rule.reason !== undefined && (typeof rule.reason !== 'string' || rule.reason.length > 500)) {
      throw new ConfigInvalidError(`${what}: reason must be a string of at most 500 characters`);
    }
    if (rule.action === 'deny' && !rule.reason) {
      throw new ConfigInvalidError(`${what}: a deny rule (a freeze) needs a reason, shown while it blocks`);
    }
    const reason = rule.reason ?? (rule.action === 'allow' ? 'promotion window' : 'freeze');
    const base = { action: rule.action, reason };
    if ('from' in rule) {
      const from = parseInstant(rule.from, timeZone, `${what}.from`);
      const to = parseInstant(rule.to, timeZone, `${what}.to`);
      if (to <= from) throw new ConfigInvalidError(`${what}: to must be after from`);
      return {
        ...base,
        lookbackMs: 0,
        intervals: (a: number, b: number): Array<[number, number]> =>
          from < b && to > a ? [[from, to]] : [],
      };
    }
    const hasCron = 'cron' in rule;
    if (hasCron === 'rrule' in rule)
      throw new ConfigInvalidError(`${what}: give exactly one of cron, rrule or from/to`);
    const matcher: Matcher = hasCron ? parseCron(rule.cron) : parseRRule(rule.rrule);
    const duration = rule.durationMs;
    if (!Number.isInteger(duration) || duration < 60_000 || duration > 31 * DAY) {
      throw new ConfigInvalidError(`${what}: durationMs must be an integer from 60000 (a minute) to 31 days`);
    }
    return {
      ...base,
      lookbackMs: duration,
      intervals: (a: number, b: number) =>
        occurrences(matcher, timeZone, a - duration + 1, b).map((s): [number, number] => [s, s + duration]),
    };
  });
}

function union(list: Array<[number, number]>): Array<[number, number]> {
  const sorted = [...list].sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** The instants in [fromMs, toMs) when promotion may start, as sorted disjoint intervals. */
export function openIntervals(
  rules: readonly Compiled[],
  fromMs: number,
  toMs: number,
): Array<[number, number]> {
  const allows = rules.filter((r) => r.action === 'allow');
  const allowed =
    allows.length === 0
      ? [[fromMs, toMs] as [number, number]]
      : union(allows.flatMap((r) => r.intervals(fromMs, toMs)));
  const denied = union(rules.filter((r) => r.action === 'deny').flatMap((r) => r.intervals(fromMs, toMs)));
  const out: Array<[number, number]> = [];
  for (const [s0, e0] of allowed) {
    let s = Math.max(s0, fromMs);
    const e = Math.min(e0, toMs);
    for (const [ds, de] of denied) {
      if (de <= s || ds >= e) continue;
      if (ds > s) out.push([s, ds]);
      s = Math.max(s, de);
    }
    if (s < e) out.push([s, e]);
  }
  return out;
}

/**
 * Evaluates compiled rules at an instant: open or closed, why, and the next change (searched up to a
 * year ahead, a week at a time).
 */
export function windowState(rules: readonly Compiled[], at: Date): WindowState {
  const t = at.getTime();
  if (rules.length === 0) return { open: true };
  const active = (r: Compiled) => r.intervals(t, t + 1).some(([s, e]) => s <= t && t < e);
  const deny = rules.find((r) => r.action === 'deny' && active(r));
  const allows = rules.filter((r) => r.action === 'allow');
  const open = !deny && (allows.length === 0 || allows.some(active));
  // Walk forward a week at a time to the next change.
  for (let from = t; from < t + HORIZON; from += CHUNK) {
    const ints = openIntervals(rules, from, from + CHUNK);
    if (open) {
      // The current window may span chunks: follow it while it reaches each chunk's end.
      const first = ints[0];
      if (!first || first[0] > from) return { open, closesAt: new Date(from) };
      if (first[1] < from + CHUNK) return { open, closesAt: new Date(first[1]) };
    } else if (ints.length > 0) {
      return {
        open,
        reason: deny ? deny.reason : 'outside every allow window',
        opensAt: new Date(ints[0]![0]),
      };
    }
  }
  return open ? { open } : { open, reason: deny ? deny.reason : 'outside every allow window' };
}

/** The earliest instant at or after `at` when the rules allow a start, or undefined within a year. */
export function nextOpen(rules: readonly Compiled[], at: Date): Date | undefined {
  const s = windowState(rules, at);
  return s.open ? at : s.opensAt;
}

export type { Compiled as CompiledWindows };

/**
 * Judges window rules at an instant: whether a promotion may start, why not, and the next change.
 *
 * @example
 * ```ts
 * windowsAt([{ action: 'deny', from: '2026-12-20', to: '2027-01-04', timeZone: 'UTC', reason: 'year-end freeze' }], new Date('2026-12-24T12:00:00Z'))
 * // { open: false, reason: 'year-end freeze', opensAt: 2027-01-04T00:00:00.000Z }
 * ```
 */
export function windowsAt(rules: readonly WindowRule[], at: Date): WindowState {
  return windowState(compileWindows(rules, 'windowsAt'), at);
}
