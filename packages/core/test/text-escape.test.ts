import { Marked } from 'marked';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeMarkdown, escapePromQLString } from '../src/kit/index.js';
import { type RunningPrometheus, startPrometheus } from './helpers/prometheus.js';

// Rendered by a real GFM renderer (links, autolinks, images, HTML, tables, emphasis).
const gfm = new Marked({ gfm: true });
const render = (md: string) => gfm.parse(md, { async: false }) as string;
const decode = (html: string) =>
  html
    .replace(/<\/?p>|\n/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');

const hostile = [
  'v1 [click here](https://evil.example/login)',
  '![pixel](https://evil.example/track.png)',
  '<img src=x onerror=alert(1)>',
  '<script>alert(1)</script>',
  'visit https://evil.example or www.evil.example now',
  'mail ops@evil.example',
  '<https://evil.example>',
  '**bold** _under_ *it* ~~gone~~ `code`',
  '[ref]: https://evil.example',
  '# heading',
  '- list item',
  '1. numbered',
  '> quote',
  'a | b | c',
  'line one\n\n# injected heading\n[x](javascript:alert(1))',
  'javascript:alert(1)',
  'tab\\[escaped\\]',
  '&lt;already&gt; &amp; entities',
  '$x^2$ math',
];

describe('text from a run stays text in Markdown', () => {
  for (const text of hostile) {
    it(`renders ${JSON.stringify(text)} as plain text: no link, image, HTML or markup`, () => {
      const html = render(escapeMarkdown(text));
      expect(html).not.toMatch(/<(a|img|script|em|strong|code|del|h\d|li|ol|ul|blockquote|table)\b/);
      expect(decode(html)).toBe(text.replace(/\n/g, ' '));
    });
  }

  it('in a table cell a value cannot add cells', () => {
    const html = render(`| a | b |\n|---|---|\n| ${escapeMarkdown('x | y | z')} | ok |`);
    expect(html.match(/<td>/g)).toHaveLength(2);
    expect(html).toContain('x | y | z');
  });

  it('without HTML (chat renderers) keeps & and < readable and still makes no link', () => {
    const out = escapeMarkdown('a & b < c [x](https://e.example)', { html: false });
    expect(out).toContain('a & b');
    expect(render(out)).not.toMatch(/<a\b/);
  });
});

describe('PromQL label values cannot leave their string, whatever the quotes', () => {
  const values = [
    `a"} or vector(1) or {x="`,
    `a'} or vector(1) or {x='`,
    'back\\slash',
    'new\nline',
    'tick`',
    'ünï',
    '\\x22',
  ];
  let prometheus: RunningPrometheus | undefined;
  beforeAll(async () => {
    prometheus = await startPrometheus([]);
  });
  afterAll(async () => {
    await prometheus?.stop();
  });

  it('escapes quotes, backslashes and control characters as PromQL escapes', () => {
    expect(escapePromQLString(`a"b'c\\d\ne`)).toBe('a\\x22b\\x27c\\\\d\\x0ae');
    expect(escapePromQLString('plain-v1.2.3')).toBe('plain-v1.2.3');
  });

  it('a real Prometheus reads back exactly the value, in double and in single quotes', async () => {
    for (const value of values) {
      for (const q of ['"', "'"]) {
        const s = `${q}${escapePromQLString(value)}${q}`;
        const query = `label_replace(vector(1), "got", ${s}, "", "")`;
        const res = await fetch(`${prometheus!.url}/api/v1/query?query=${encodeURIComponent(query)}`);
        const body = (await res.json()) as {
          status: string;
          data?: { result: Array<{ metric: Record<string, string> }> };
        };
        expect(body.status, query).toBe('success');
        expect(
          body.data?.result.map((r) => r.metric.got),
          query,
        ).toEqual([value]);
      }
    }
  });
});
