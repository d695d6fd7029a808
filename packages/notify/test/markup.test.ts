import { Marked } from 'marked';
import { describe, expect, it } from 'vitest';
import { discordMessage } from '../src/discord.js';
import { teamsMessage } from '../src/teams.js';
import type { Notice } from '../src/templates.js';

const gfm = new Marked({ gfm: true });
const render = (md: string) => gfm.parse(md, { async: false }) as string;

const evil =
  '[log in](https://evil.example/login) ![x](https://evil.example/p.png) <img src=x> www.evil.example';
const notice: Notice = {
  kind: 'release.rolled-back',
  severity: 'P1',
  tone: 'warning',
  title: `Release of ${evil} rolled back`,
  text: `Reason: ${evil}`,
  fields: [{ label: 'Version', value: evil }],
  list: { title: 'Actions Taken', items: [evil, 'plain step'] },
  footer: evil,
  runId: 'run-1',
  environment: 'production',
  time: '2026-03-02T10:00:00.000Z',
};

/** Every string in a payload, wherever it sits. */
const strings = (v: unknown): string[] =>
  typeof v === 'string' ? [v] : v && typeof v === 'object' ? Object.values(v).flatMap(strings) : [];

describe('chat payloads keep versions, reasons and messages as text', () => {
  for (const [name, payload] of [
    ['Teams', teamsMessage(notice)],
    ['Discord', discordMessage(notice)],
  ] as const) {
    it(`${name}: no link, image or HTML comes out of a hostile version or reason`, () => {
      const texts = strings(payload).filter((t) => t.includes('evil'));
      expect(texts.length).toBeGreaterThan(3);
      for (const text of texts) {
        const html = render(text);
        expect(html, text).not.toMatch(/<(a|img)\b/);
        expect(html, text).toContain('log in');
      }
    });
  }
});
