// Finds the ```ts blocks of Markdown files: shared by the docs type-check and the plugin-guide test.
import { readFileSync } from 'node:fs';

/**
 * The ```ts code blocks of a Markdown file, with their line numbers and, when the first line is
 * `// file: <name>`, that file name. A fragment that uses names from the text around it declares them
 * in an HTML comment on the line before its fence, which readers do not see:
 * `<!-- check-docs: declare const engine: import('@codegraph/release-core').ReleaseEngine; -->`.
 * The preamble is put on the block's first line, so compiler positions still map to doc lines.
 * @param {string} file
 * @returns {{ code: string, line: number, name: string | undefined }[]}
 */
export function tsBlocks(file) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(ts|typescript)\s*$/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1].length;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end])) end++;
    const code = lines
      .slice(start, end)
      .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
      .join('\n');
    const name = /^\/\/ file: (\S+)\s*$/.exec(code.split('\n')[0] ?? '')?.[1];
    const preamble = /^\s*<!-- check-docs: (.*) -->\s*$/.exec(lines[i - 1] ?? '')?.[1];
    // The preamble and the first line share a line (preamble first), so line numbers stay the same.
    const withPreamble = preamble ? `${preamble} ${code}` : code;
    blocks.push({ code: `${withPreamble}\n`, line: start + 1, name });
    i = end;
  }
  return blocks;
}
