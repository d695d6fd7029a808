#!/usr/bin/env node
// Bench: how long judging promotion windows takes (`windowsAt`: open or closed, and the next change
// searched up to a year ahead), against a baseline in the same run that turns every minute into local
// time with its own Intl.DateTimeFormat call (what a straightforward matcher does; ours computes the
// zone's offset once per UTC quarter hour). One JSON object per line, the headline last.
//
//   npx tsup && node bench/pipeline-windows.mjs          (in packages/core)
import { windowsAt } from '../dist/index.js';

const iterations = Number(process.env.BENCH_ITERATIONS ?? 20);
const MIN = 60_000;
const DAY = 86_400_000;

const cases = [
  {
    name: 'weekday window, open (search for its end)',
    rules: [{ action: 'allow', cron: '0 9 * * 1-5', durationMs: 8 * 3_600_000, timeZone: 'Europe/Berlin' }],
    at: '2026-03-27T08:30:00Z',
  },
  {
    name: 'year-end freeze over a weekday window (search 12 days ahead)',
    rules: [
      { action: 'allow', cron: '0 9 * * 1-5', durationMs: 8 * 3_600_000, timeZone: 'Europe/Berlin' },
      { action: 'deny', from: '2026-12-20', to: '2027-01-04', timeZone: 'Europe/Berlin', reason: 'freeze' },
    ],
    at: '2026-12-22T10:00:00Z',
  },
  {
    name: 'no window within a year (the whole search)',
    rules: [{ action: 'allow', cron: '0 9 29 2 *', durationMs: 3_600_000, timeZone: 'America/New_York' }],
    at: '2027-03-01T00:00:00Z',
  },
];

// Baseline: one Intl call per minute, scanning forward to the next opening or closing (same answers).
const fmt = new Map();
function localFields(tz, ms) {
  let f = fmt.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    fmt.set(tz, f);
  }
  const p = Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return {
    month: +p.month,
    day: +p.day,
    hour: +p.hour % 24,
    minute: +p.minute,
    weekday: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(p.weekday),
  };
}
function naiveStartsAt(rule, ms) {
  const [mi, h, dom, mon, dow] = rule.cron.split(' ');
  const t = localFields(rule.timeZone, ms);
  const inField = (field, v) => {
    if (field === '*') return true;
    return field.split(',').some((part) => {
      const [a, b] = part.split('-').map(Number);
      return b === undefined ? v === a : v >= a && v <= b;
    });
  };
  return (
    inField(mi, t.minute) &&
    inField(h, t.hour) &&
    inField(dom, t.day) &&
    inField(mon, t.month) &&
    inField(dow, t.weekday)
  );
}
// The bench's freeze is in Berlin's winter (+01:00).
const denied = (rules, ms) =>
  rules.some(
    (r) =>
      r.action === 'deny' &&
      ms >= Date.parse(`${r.from}T00:00:00+01:00`) &&
      ms < Date.parse(`${r.to}T00:00:00+01:00`),
  );
function naiveOpen(rules, ms) {
  if (denied(rules, ms)) return false;
  const allows = rules.filter((x) => x.action === 'allow');
  return allows.some((r) => {
    for (let s = ms; s > ms - r.durationMs; s -= MIN)
      if (naiveStartsAt(r, Math.floor(s / MIN) * MIN)) return true;
    return false;
  });
}
function naive(rules, at) {
  const t0 = Date.parse(at);
  const open = naiveOpen(rules, t0);
  // Scan minute by minute; a closed minute is one that no start within the duration covers.
  const starts = (ms) => rules.some((r) => r.action === 'allow' && naiveStartsAt(r, ms));
  const maxDur = Math.max(...rules.filter((r) => r.durationMs).map((r) => r.durationMs));
  let lastStart = -Infinity;
  for (let s = t0 - maxDur; s <= t0; s += MIN) if (starts(s)) lastStart = s;
  for (let ms = Math.ceil(t0 / MIN) * MIN; ms < t0 + 366 * DAY; ms += MIN) {
    if (starts(ms)) lastStart = ms;
    const now = !denied(rules, ms) && ms - lastStart < maxDur;
    if (now !== open) return { open, change: new Date(ms).toISOString() };
  }
  return { open };
}

function time(fn) {
  fn();
  const start = performance.now();
  for (let i = 0; i < iterations; i++) fn();
  return (performance.now() - start) / iterations;
}

const out = [];
for (const c of cases) {
  const ours = time(() => windowsAt(c.rules, new Date(c.at)));
  const base = time(() => naive(c.rules, c.at));
  const r = windowsAt(c.rules, new Date(c.at));
  const line = {
    case: c.name,
    oursMs: Math.round(ours * 100) / 100,
    baselineMs: Math.round(base * 100) / 100,
    speedup: Math.round((base / ours) * 10) / 10,
    answer: { open: r.open, change: (r.opensAt ?? r.closesAt)?.toISOString() ?? null },
    baselineAnswer: naive(c.rules, c.at),
  };
  out.push(line);
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
const worst = out.at(-1);
process.stdout.write(
  `${JSON.stringify({ headline: 'windowsAt, a whole year searched', oursMs: worst.oursMs, baseline: 'one Intl.DateTimeFormat call per minute', baselineMs: worst.baselineMs, speedup: worst.speedup, iterations, node: process.version })}\n`,
);
