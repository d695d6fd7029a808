import { ConfigInvalidError } from '../../errors.js';
import { escapePromQLString } from '../../kit/text.js';

/** The placeholders every query may use; filled from the verify context. */
export const contextPlaceholders = ['pool', 'version', 'environment'] as const;

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/**
 * Checks a PromQL template before anything is sent: placeholders are `{{name}}` with a known name,
 * no stray `{{`/`}}` remain, quotes are closed, and brackets balance outside strings. Prometheus still
 * judges the full syntax; this catches the mistakes a template makes.
 */
export function checkTemplate(metric: string, template: string, known: readonly string[]): string[] {
  const bad = (why: string) =>
    new ConfigInvalidError(`metric ${metric}: malformed PromQL template: ${why}`, {
      details: { metric, template },
    });
  if (typeof template !== 'string' || template.trim() === '') throw bad('the query is empty');
  const used = new Set<string>();
  for (const m of template.matchAll(PLACEHOLDER)) {
    if (!known.includes(m[1]!)) throw bad(`unknown placeholder {{${m[1]}}} (known: ${known.join(', ')})`);
    used.add(m[1]!);
  }
  const rest = template.replace(PLACEHOLDER, 'x');
  if (rest.includes('{{') || rest.includes('}}')) throw bad('an unclosed or malformed {{placeholder}}');
  const stack: string[] = [];
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  let quote: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const ch = rest[i]!;
    if (quote) {
      if (ch === '\\' && quote !== '`') i++;
      else if (ch === quote) quote = undefined;
      continue;
    }
    if (ch === '"' || ch === "'" || ch === '`') quote = ch;
    else if (ch === '#') {
      while (i < rest.length && rest[i] !== '\n') i++;
    } else if (ch === '(' || ch === '[' || ch === '{') stack.push(ch);
    else if (ch in pairs) {
      if (stack.pop() !== pairs[ch]) throw bad(`unbalanced "${ch}" at character ${i + 1}`);
    }
  }
  if (quote) throw bad(`unclosed ${quote} string`);
  if (stack.length > 0) throw bad(`unclosed "${stack[stack.length - 1]}"`);
  return [...used];
}

/** Fills `{{name}}` placeholders with escaped values. */
export function fillTemplate(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(PLACEHOLDER, (_, name: string) => escapePromQLString(values[name] ?? ''));
}

/** Parses a Prometheus duration such as `30s`, `5m`, `1h30m` into milliseconds; `NaN` when invalid. */
export function parseDuration(text: string): number {
  const units: Record<string, number> = {
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
    d: 86_400_000,
    w: 604_800_000,
    y: 31_536_000_000,
  };
  const re = /(\d+)(ms|s|m|h|d|w|y)/g;
  if (!/^(\d+(ms|s|m|h|d|w|y))+$/.test(text)) return Number.NaN;
  let ms = 0;
  for (const m of text.matchAll(re)) ms += Number(m[1]) * units[m[2]!]!;
  return ms;
}
