import { describe, expect, it } from 'vitest';
import { type WindowRule, windowsAt } from '../src/index.js';

const at = (iso: string) => new Date(iso);
const hours = (h: number) => h * 3_600_000;

// Berlin leaves CET (+01:00) for CEST (+02:00) on Sunday 2026-03-29 at 02:00 local,
// and returns on Sunday 2026-10-25 at 03:00 local.
const weekdaysBerlin: WindowRule = {
  action: 'allow',
  cron: '0 9 * * 1-5',
  durationMs: hours(8),
  timeZone: 'Europe/Berlin',
};

describe('promotion windows', () => {
  it('opens at 09:00 Berlin time on both sides of a daylight-saving change', () => {
    // Friday before the change: 09:00 CET is 08:00 UTC.
    expect(windowsAt([weekdaysBerlin], at('2026-03-27T07:30:00Z'))).toMatchObject({
      open: false,
      reason: 'outside every allow window',
      opensAt: at('2026-03-27T08:00:00Z'),
    });
    expect(windowsAt([weekdaysBerlin], at('2026-03-27T08:00:00Z'))).toMatchObject({
      open: true,
      closesAt: at('2026-03-27T16:00:00Z'),
    });
    // Monday after: 09:00 CEST is 07:00 UTC, so 07:30 UTC is inside and the window closes at 15:00 UTC.
    expect(windowsAt([weekdaysBerlin], at('2026-03-30T07:30:00Z'))).toMatchObject({
      open: true,
      closesAt: at('2026-03-30T15:00:00Z'),
    });
    // Saturday evening: the next opening is Monday 09:00 CEST.
    expect(windowsAt([weekdaysBerlin], at('2026-03-28T18:00:00Z')).opensAt).toEqual(
      at('2026-03-30T07:00:00Z'),
    );
  });

  it('never opens at a local time the clock skips, and opens twice at one it repeats', () => {
    const nightly: WindowRule = {
      action: 'allow',
      cron: '30 2 * * *',
      durationMs: hours(0.25),
      timeZone: 'Europe/Berlin',
    };
    // 2026-03-28 02:30 CET exists (01:30 UTC); 2026-03-29 02:30 does not, so the next is 03-30 02:30 CEST.
    expect(windowsAt([nightly], at('2026-03-28T01:35:00Z')).open).toBe(true);
    expect(windowsAt([nightly], at('2026-03-28T02:00:00Z')).opensAt).toEqual(at('2026-03-30T00:30:00Z'));
    // 2026-10-25 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
    expect(windowsAt([nightly], at('2026-10-25T00:35:00Z')).open).toBe(true);
    expect(windowsAt([nightly], at('2026-10-25T01:00:00Z'))).toMatchObject({
      open: false,
      opensAt: at('2026-10-25T01:30:00Z'),
    });
    expect(windowsAt([nightly], at('2026-10-25T01:40:00Z')).open).toBe(true);
    // Sunday 03:00 on the spring-forward night comes right after 01:59 CET: 01:00 UTC.
    const sunday: WindowRule = {
      action: 'allow',
      cron: '0 3 * * SUN',
      durationMs: hours(1),
      timeZone: 'Europe/Berlin',
    };
    expect(windowsAt([sunday], at('2026-03-28T12:00:00Z')).opensAt).toEqual(at('2026-03-29T01:00:00Z'));
    expect(windowsAt([sunday], at('2026-10-24T12:00:00Z')).opensAt).toEqual(at('2026-10-25T02:00:00Z'));
  });

  it('an RRULE window follows local time across a daylight-saving change like the same cron', () => {
    const rrule: WindowRule = {
      action: 'allow',
      rrule: 'RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0',
      durationMs: hours(8),
      timeZone: 'America/New_York',
    };
    const cron: WindowRule = {
      action: 'allow',
      cron: '0 9 * * MON-FRI',
      durationMs: hours(8),
      timeZone: 'America/New_York',
    };
    // New York springs forward on 2026-03-08: 09:00 is 14:00 UTC before, 13:00 UTC after.
    for (const t of [
      '2026-03-06T13:30:00Z',
      '2026-03-06T14:30:00Z',
      '2026-03-09T13:30:00Z',
      '2026-03-07T15:00:00Z',
    ]) {
      expect(windowsAt([rrule], at(t))).toEqual(windowsAt([cron], at(t)));
    }
    expect(windowsAt([rrule], at('2026-03-06T13:30:00Z')).open).toBe(false);
    expect(windowsAt([rrule], at('2026-03-09T13:30:00Z')).open).toBe(true);
  });

  it('a freeze denies promotion over every allow window and says why and until when', () => {
    const freeze: WindowRule = {
      action: 'deny',
      from: '2026-12-20',
      to: '2027-01-04T09:00',
      timeZone: 'Europe/Berlin',
      reason: 'year-end freeze',
    };
    const state = windowsAt([weekdaysBerlin, freeze], at('2026-12-22T10:00:00Z'));
    // The freeze ends Monday 2027-01-04 09:00 Berlin (08:00 UTC), which is inside that day's window.
    expect(state).toMatchObject({
      open: false,
      reason: 'year-end freeze',
      opensAt: at('2027-01-04T08:00:00Z'),
    });
    expect(windowsAt([weekdaysBerlin, freeze], at('2026-12-18T10:00:00Z')).open).toBe(true);
    // The window that day closes early: the freeze starts at midnight Berlin time.
    expect(windowsAt([freeze], at('2026-12-19T22:59:00Z'))).toMatchObject({
      open: true,
      closesAt: at('2026-12-19T23:00:00Z'),
    });
  });

  it('a recurring freeze on the last Friday of the month (RRULE with an ordinal)', () => {
    const monthEnd: WindowRule = {
      action: 'deny',
      rrule: 'FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=0',
      durationMs: hours(24),
      timeZone: 'UTC',
      reason: 'month-end close',
    };
    expect(windowsAt([monthEnd], at('2026-11-27T10:00:00Z'))).toMatchObject({
      open: false,
      reason: 'month-end close',
      opensAt: at('2026-11-28T00:00:00Z'),
    });
    expect(windowsAt([monthEnd], at('2026-11-20T10:00:00Z'))).toMatchObject({
      open: true,
      closesAt: at('2026-11-27T00:00:00Z'),
    });
  });

  it('refuses a rule without a time zone, an unknown zone, a freeze without a reason, and a bad recurrence', () => {
    const bad: unknown[] = [
      { action: 'allow', cron: '0 9 * * 1-5', durationMs: hours(1) },
      { action: 'allow', cron: '0 9 * * 1-5', durationMs: hours(1), timeZone: 'Mars/Olympus' },
      { action: 'deny', from: '2026-12-20', to: '2027-01-04', timeZone: 'UTC' },
      { action: 'allow', cron: '0 25 * * *', durationMs: hours(1), timeZone: 'UTC' },
      { action: 'allow', cron: '0 9 * *', durationMs: hours(1), timeZone: 'UTC' },
      { action: 'allow', rrule: 'FREQ=DAILY;INTERVAL=2;BYHOUR=9', durationMs: hours(1), timeZone: 'UTC' },
      { action: 'allow', rrule: 'FREQ=DAILY', durationMs: hours(1), timeZone: 'UTC' },
      { action: 'allow', cron: '0 9 * * *', durationMs: 0, timeZone: 'UTC' },
      { action: 'deny', from: '2027-01-04', to: '2026-12-20', timeZone: 'UTC', reason: 'backwards' },
      { action: 'maybe', cron: '0 9 * * *', durationMs: hours(1), timeZone: 'UTC' },
    ];
    for (const rule of bad) {
      expect(() => windowsAt([rule as WindowRule], at('2026-06-01T00:00:00Z')), JSON.stringify(rule)).toThrow(
        expect.objectContaining({ code: 'CG_CONFIG_INVALID' }),
      );
    }
  });
});
