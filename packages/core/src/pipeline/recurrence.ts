import { ConfigInvalidError } from '../errors.js';

/**
 * Wall-clock matching for promotion windows: 5-field cron expressions and a subset of RFC 5545
 * `RRULE`s, both read in an explicit IANA time zone with `Intl.DateTimeFormat`.
 *
 * Time is walked in UTC minutes and each minute is turned into local fields, so a daylight-saving
 * change needs no special case: a local time the clock skips (02:30 on a spring-forward night) never
 * starts a window, and a local time that happens twice starts it at both instants.
 */

/** Local wall-clock fields of one instant. */
export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  /** 0 = Sunday ... 6 = Saturday. */
  weekday: number;
  daysInMonth: number;
}

/** A compiled recurrence: the local minutes and hours it starts at, on the days it allows. */
export interface Matcher {
  minutes: ReadonlySet<number>;
  /** Absent: every hour. */
  hours?: ReadonlySet<number> | undefined;
  dayOk(t: LocalTime): boolean;
  /** No occurrence after this UTC instant. */
  until?: number | undefined;
}

const matches = (m: Matcher, t: LocalTime) =>
  m.minutes.has(t.minute) && (!m.hours || m.hours.has(t.hour)) && m.dayOk(t);

/**
 * How many minutes from local time `t` can be passed over without missing a start: the rest of a day
 * that is not allowed (less an hour, so a daylight-saving change cannot carry the jump past the next
 * midnight), the rest of an hour that is not, or the minutes up to the next allowed one. 0: test `t`.
 */
function skip(m: Matcher, t: LocalTime): number {
  if (!m.dayOk(t)) return Math.max(1, 24 * 60 - (t.hour * 60 + t.minute) - 60);
  if (m.hours && !m.hours.has(t.hour)) return 60 - t.minute;
  if (m.minutes.has(t.minute)) return 0;
  let k = 1;
  while (t.minute + k < 60 && !m.minutes.has(t.minute + k)) k++;
  return k;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Checks an IANA time zone name; `CG_CONFIG_INVALID` when Intl does not know it. */
export function checkTimeZone(timeZone: unknown, what: string): string {
  if (typeof timeZone !== 'string' || timeZone.length === 0) {
    throw new ConfigInvalidError(
      `${what}: timeZone is required (an IANA name such as "Europe/Berlin" or "UTC")`,
    );
  }
  formatter(timeZone, what);
  return timeZone;
}

function formatter(timeZone: string, what = 'window'): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch (err) {
      throw new ConfigInvalidError(`${what}: unknown time zone "${timeZone}"`, { cause: err });
    }
    formatters.set(timeZone, f);
  }
  return f;
}

/** The zone's offset from UTC at an instant, in ms (local = utc + offset). */
export function offsetMs(timeZone: string, utcMs: number): number {
  const parts = formatter(timeZone).formatToParts(new Date(utcMs));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const asUtc = Date.UTC(
    get('year'),
    get('month') - 1,
    get('day'),
    get('hour') % 24,
    get('minute'),
    get('second'),
  );
  return asUtc - Math.floor(utcMs / 1000) * 1000;
}

/**
 * The UTC instant of a local wall-clock time: the earlier one when it happens twice, and for a time the
 * clock skips, the instant it would be with the offset before the change (02:30 becomes 03:30).
 */
export function localToUtc(timeZone: string, y: number, mo: number, d: number, h = 0, mi = 0): number {
  const naive = Date.UTC(y, mo - 1, d, h, mi);
  const before = naive - offsetMs(timeZone, naive - 43_200_000);
  const after = naive - offsetMs(timeZone, naive + 43_200_000);
  const valid = [before, after].filter((c) => c + offsetMs(timeZone, c) === naive);
  return valid.length > 0 ? Math.min(...valid) : before;
}

function fields(localMs: number): LocalTime {
  const d = new Date(localMs);
  const year = d.getUTCFullYear();
  const month = d.getUTCMonth() + 1;
  return {
    year,
    month,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    weekday: d.getUTCDay(),
    daysInMonth: new Date(Date.UTC(year, month, 0)).getUTCDate(),
  };
}

const MINUTE = 60_000;
const CHUNK = 15 * MINUTE;

/** Every instant in [fromMs, toMs) at which `matcher` starts an occurrence, in the zone's local time. */
export function occurrences(matcher: Matcher, timeZone: string, fromMs: number, toMs: number): number[] {
  const out: number[] = [];
  const end = matcher.until === undefined ? toMs : Math.min(toMs, matcher.until + 1);
  let chunk = Number.NaN;
  let offset = 0;
  for (let t = Math.ceil(fromMs / MINUTE) * MINUTE; t < end; ) {
    // Zones change offset on quarter-hour boundaries, so one offset serves a whole UTC quarter hour.
    if (Math.floor(t / CHUNK) !== chunk) {
      chunk = Math.floor(t / CHUNK);
      offset = offsetMs(timeZone, t);
    }
    const local = fields(t + offset);
    const k = skip(matcher, local);
    if (k === 0 && matches(matcher, local)) out.push(t);
    t += Math.max(1, k) * MINUTE;
  }
  return out;
}

const dayNames = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const monthNames = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];

function cronField(text: string, min: number, max: number, names: string[], nameBase: number, what: string) {
  const values = new Set<number>();
  const bad = () => new ConfigInvalidError(`cron ${what} field "${text}" is not valid (range ${min}-${max})`);
  const num = (s: string) => {
    const i = names.indexOf(s.toUpperCase());
    if (i >= 0) return i + nameBase;
    if (!/^\d{1,2}$/.test(s)) throw bad();
    return Number(s);
  };
  for (const part of text.split(',')) {
    const m = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d{1,2}))?$/.exec(part);
    if (!m) throw bad();
    const step = m[2] === undefined ? 1 : Number(m[2]);
    let lo = min;
    let hi = max;
    if (m[1] !== '*') {
      const [a, b] = m[1]!.split('-');
      lo = num(a!);
      hi = b === undefined ? (m[2] === undefined ? lo : max) : num(b);
    }
    if (step < 1 || lo < min || hi > max || lo > hi) throw bad();
    for (let v = lo; v <= hi; v += step) values.add(v);
  }
  return { values, star: text === '*' };
}

/**
 * A 5-field cron expression (minute hour day-of-month month day-of-week) with lists, ranges, steps
 * and English names; day-of-week 0 or 7 is Sunday. As in cron, when both day fields are restricted
 * a day matching either one matches.
 */
export function parseCron(expression: string): Matcher {
  const parts = typeof expression === 'string' ? expression.trim().split(/\s+/) : [];
  if (parts.length !== 5) {
    throw new ConfigInvalidError(
      `cron "${String(expression)}" must have 5 fields: minute hour day-of-month month day-of-week`,
    );
  }
  const minute = cronField(parts[0]!, 0, 59, [], 0, 'minute').values;
  const hour = cronField(parts[1]!, 0, 23, [], 0, 'hour').values;
  const dom = cronField(parts[2]!, 1, 31, [], 0, 'day-of-month');
  const month = cronField(parts[3]!, 1, 12, monthNames, 1, 'month').values;
  const dow = cronField(parts[4]!, 0, 7, dayNames, 0, 'day-of-week');
  if (dow.values.has(7)) dow.values.add(0);
  return {
    minutes: minute,
    hours: hour,
    dayOk(t) {
      if (!month.has(t.month)) return false;
      const d = dom.values.has(t.day);
      const w = dow.values.has(t.weekday);
      if (dom.star || dow.star) return d && w;
      return d || w;
    },
  };
}

const rruleDays = ['SU', 'MO', 'TU', 'WE', 'TH', 'FR', 'SA'];

function intList(value: string, min: number, max: number, what: string): Set<number> {
  const out = new Set<number>();
  for (const s of value.split(',')) {
    if (!/^-?\d{1,2}$/.test(s)) throw new ConfigInvalidError(`RRULE ${what}=${value} is not valid`);
    const n = Number(s);
    if (n < min || n > max || (n === 0 && min < 0)) {
      throw new ConfigInvalidError(`RRULE ${what}=${value} is out of range`);
    }
    out.add(n);
  }
  return out;
}

/**
 * An RFC 5545 `RRULE` (with or without the `RRULE:` prefix): `FREQ` HOURLY, DAILY, WEEKLY, MONTHLY
 * or YEARLY with `BYMONTH`, `BYMONTHDAY` (negative counts from the month's end), `BYDAY` (with
 * ordinals such as `-1FR` in MONTHLY and YEARLY rules), `BYHOUR`, `BYMINUTE` (default 0) and `UNTIL`.
 * There is no DTSTART: the time of day comes from `BYHOUR` (required except HOURLY), the days
 * from `BYDAY`/`BYMONTHDAY` (required for WEEKLY and MONTHLY). `INTERVAL` other than 1, `COUNT`
 * and `BYSETPOS` are refused, since they need an anchor date.
 */
export function parseRRule(rule: string): Matcher {
  if (typeof rule !== 'string') throw new ConfigInvalidError('rrule must be a string');
  const body = rule.trim().replace(/^RRULE:/i, '');
  const props = new Map<string, string>();
  for (const pair of body.split(';')) {
    const [k, v] = pair.split('=');
    if (!k || v === undefined || v === '')
      throw new ConfigInvalidError(`RRULE "${rule}": "${pair}" is not NAME=VALUE`);
    props.set(k.toUpperCase(), v.toUpperCase());
  }
  const freq = props.get('FREQ');
  if (!freq || !['HOURLY', 'DAILY', 'WEEKLY', 'MONTHLY', 'YEARLY'].includes(freq)) {
    throw new ConfigInvalidError(`RRULE "${rule}": FREQ must be HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY`);
  }
  const known = new Set([
    'FREQ',
    'INTERVAL',
    'UNTIL',
    'BYMONTH',
    'BYMONTHDAY',
    'BYDAY',
    'BYHOUR',
    'BYMINUTE',
    'WKST',
  ]);
  for (const k of props.keys()) {
    if (!known.has(k))
      throw new ConfigInvalidError(`RRULE "${rule}": ${k} is not supported in a promotion window`);
  }
  if ((props.get('INTERVAL') ?? '1') !== '1') {
    throw new ConfigInvalidError(
      `RRULE "${rule}": INTERVAL other than 1 needs an anchor date; use BYDAY/BYMONTHDAY`,
    );
  }
  let until: number | undefined;
  const u = props.get('UNTIL');
  if (u !== undefined) {
    const m = /^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})Z)?$/.exec(u);
    if (!m) throw new ConfigInvalidError(`RRULE "${rule}": UNTIL must be YYYYMMDD or YYYYMMDDTHHMMSSZ`);
    until = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +(m[4] ?? 23), +(m[5] ?? 59), +(m[6] ?? 59));
  }
  const minute = intList(props.get('BYMINUTE') ?? '0', 0, 59, 'BYMINUTE');
  const hourText = props.get('BYHOUR');
  if (hourText === undefined && freq !== 'HOURLY') {
    throw new ConfigInvalidError(
      `RRULE "${rule}": BYHOUR is required (a window has no DTSTART to take it from)`,
    );
  }
  const hour = hourText === undefined ? undefined : intList(hourText, 0, 23, 'BYHOUR');
  const months = props.has('BYMONTH') ? intList(props.get('BYMONTH')!, 1, 12, 'BYMONTH') : undefined;
  const monthDays = props.has('BYMONTHDAY')
    ? intList(props.get('BYMONTHDAY')!, -31, 31, 'BYMONTHDAY')
    : undefined;
  const days = props.has('BYDAY')
    ? props
        .get('BYDAY')!
        .split(',')
        .map((s) => {
          const m = /^([+-]?\d{1,2})?(SU|MO|TU|WE|TH|FR|SA)$/.exec(s);
          if (!m) throw new ConfigInvalidError(`RRULE "${rule}": BYDAY value "${s}" is not valid`);
          const n = m[1] === undefined ? 0 : Number(m[1]);
          if (n !== 0 && (freq === 'DAILY' || freq === 'WEEKLY' || freq === 'HOURLY' || Math.abs(n) > 5)) {
            throw new ConfigInvalidError(
              `RRULE "${rule}": BYDAY ordinal "${s}" needs FREQ=MONTHLY or YEARLY, 1-5`,
            );
          }
          return { weekday: rruleDays.indexOf(m[2]!), n };
        })
    : undefined;
  if ((freq === 'WEEKLY' && !days) || (freq === 'MONTHLY' && !days && !monthDays)) {
    throw new ConfigInvalidError(
      `RRULE "${rule}": FREQ=${freq} needs BYDAY${freq === 'MONTHLY' ? ' or BYMONTHDAY' : ''}`,
    );
  }
  if (freq === 'YEARLY' && !months)
    throw new ConfigInvalidError(`RRULE "${rule}": FREQ=YEARLY needs BYMONTH`);
  return {
    minutes: minute,
    hours: hour,
    until,
    dayOk(t) {
      if (months && !months.has(t.month)) return false;
      if (monthDays && !monthDays.has(t.day) && !monthDays.has(t.day - t.daysInMonth - 1)) return false;
      if (days) {
        const fromStart = Math.ceil(t.day / 7);
        const fromEnd = -Math.ceil((t.daysInMonth - t.day + 1) / 7);
        return days.some(
          (d) => d.weekday === t.weekday && (d.n === 0 || d.n === fromStart || d.n === fromEnd),
        );
      }
      return true;
    },
  };
}
