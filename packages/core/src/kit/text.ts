// Text from a run (versions, reasons, check messages) goes into documents other programs read:
// Markdown, chat cards, PromQL. These keep it text, whatever it holds.

/** Markdown (CommonMark and GFM) punctuation that can start inline markup anywhere: escaped with a backslash. */
const markdownPunctuation = /[\\`*[\]()!#|~@$]/g;
/** The same plus `<`, for renderers without HTML entities: `<` could still open an autolink or a tag. */
const markdownOrTag = /[\\`*[\]()!#|~@$<]/g;

/** Options of {@link escapeMarkdown}. */
export interface MarkdownEscapeOptions {
  /**
   * Whether the renderer also takes HTML (GitHub, CommonMark documents): then `&`, `<` and `>` become
   * entities. Chat renderers that show entities literally (Discord, Teams cards) pass `false`, and `<`
   * is backslash-escaped instead. @default true
   */
  html?: boolean;
}

/**
 * Escapes text for any Markdown renderer (CommonMark, GitHub, Teams, Discord) so that it shows as
 * written: no link, image, emphasis, code, heading, table cell break, autolink (`https:`, `www.`,
 * `user@host`) or HTML tag can come out of it. Line breaks become spaces, so a value cannot start a
 * block of its own.
 *
 * @example
 * ```ts
 * escapeMarkdown('v1 [click](https://evil.example)') // 'v1 \\[click\\]\\(https\\://evil.example\\)'
 * escapeMarkdown('<img src=x onerror=alert(1)>')     // '&lt;img src=x onerror=alert\\(1\\)&gt;'
 * ```
 */
export function escapeMarkdown(text: string, options: MarkdownEscapeOptions = {}): string {
  const oneLine = text.replace(/\r\n?|\n|\u2028|\u2029/g, ' ');
  const html = options.html ?? true;
  const entities = html
    ? oneLine.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    : oneLine;
  return (
    entities
      .replace(html ? markdownPunctuation : markdownOrTag, (ch) => `\\${ch}`)
      // `_` inside a word (`error_rate`) is never emphasis; at a word's edge it may be.
      .replace(/(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])/g, '\\_')
      // GFM autolinks: `https://`, `ftp://`, `mailto:`, `xmpp:` and `www.` become links without brackets.
      .replace(/:(?=\/\/)|(?<=\b(?:mailto|xmpp)):/gi, '\\:')
      .replace(/\b(w)(ww)\./gi, '$1$2\\.')
      // At the start, `-`, `+`, `=` and `1.` would make a list or a heading of the text around it.
      .replace(
        /^(\s*)([-+=]|\d+[.)])(?=\s|$)/,
        (_, space: string, mark: string) => `${space}${mark.replace(/[-+=.)]$/, (c) => `\\${c}`)}`,
      )
  );
}

/**
 * Escapes a value for a PromQL string literal so that it stays one label value whatever quotes the
 * query template uses around it (`"..."` or `'...'`): backslashes doubled, both quote characters and
 * every control character written as `\xHH`. (Backtick raw strings take no escapes: use quotes
 * around a placeholder.)
 *
 * @example
 * ```ts
 * const query = `rate(http_requests_total{pool="${escapePromQLString(pool)}"}[1m])`
 * escapePromQLString(`a"} or vector(1) or {x="`) // 'a\\x22} or vector(1) or {x=\\x22'
 * ```
 */
export function escapePromQLString(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === '"' || ch === "'" || ch === '`' || code < 0x20 || code === 0x7f)
      out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}
