/**
 * Whether a terminal would act on this code point: C0 controls (but tab), DEL, C1 controls (CSI, OSC...),
 * and the Unicode format characters that reorder or hide text (bidirectional overrides and isolates,
 * zero-width characters, line and paragraph separators, the byte-order mark).
 */
function unsafe(cp: number): boolean {
  return (
    (cp < 0x20 && cp !== 0x09) ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0x2028 && cp <= 0x202e) ||
    (cp >= 0x2060 && cp <= 0x2069) ||
    cp === 0xfeff
  );
}

/**
 * Makes text read from a file, a manifest or a remote answer safe to print: every character a terminal
 * would act on (escape sequences, carriage returns, bell, bidirectional overrides) is shown as a visible
 * `\u{1b}`-style escape instead, so the text can neither restyle the screen nor hide what follows.
 *
 * @example
 * ```ts
 * sanitizeForTerminal('v1\u001b[2J') // 'v1\\u{1b}[2J'
 * ```
 */
export function sanitizeForTerminal(text: string): string {
  let out = '';
  for (const ch of String(text)) {
    const cp = ch.codePointAt(0) ?? 0;
    out += unsafe(cp) ? `\\u{${cp.toString(16)}}` : ch;
  }
  return out;
}
