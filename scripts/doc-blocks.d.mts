/** A ```ts block of a Markdown file. */
export interface TsBlock {
  code: string;
  /** 1-based line of the block's first code line. */
  line: number;
  /** The name from a first line `// file: <name>`, when there is one. */
  name: string | undefined;
}
export function tsBlocks(file: string): TsBlock[];
