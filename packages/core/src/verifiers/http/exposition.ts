/** What a Prometheus text exposition holds: metric family names and the number of samples. */
export interface Exposition {
  /** Names from `# TYPE`/`# HELP` lines and sample names (with `_bucket`, `_sum`, `_count`... folded). */
  names: Set<string>;
  samples: number;
}

/** Thrown for text that is not Prometheus exposition format 0.0.4; says which line. */
export class ExpositionParseError extends Error {
  override name = 'ExpositionParseError';
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const VALUE = '(?:[+-]?(?:Inf|inf|NaN|nan)|[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?)';
const SAMPLE = new RegExp(
  `^(${NAME})(?:\\{\\s*(?:${LABEL}\\s*(?:,\\s*${LABEL}\\s*)*,?\\s*)?\\})?[ \\t]+${VALUE}(?:[ \\t]+-?\\d+)?[ \\t]*$`,
);
const META = new RegExp(`^#[ \\t]+(HELP|TYPE)[ \\t]+(${NAME})(?:[ \\t]+(.*))?$`);
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIX = /_(bucket|sum|count|created|total|info)$/;

/**
 * Parses Prometheus text exposition format (0.0.4) strictly enough to catch a broken `/metrics`
 * (bad names, labels, values, unknown `# TYPE`), and lists the metric names it holds.
 */
export function parseExposition(text: string): Exposition {
  const names = new Set<string>();
  let samples = 0;
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = META.exec(line);
      if (!m) continue; // other comments are allowed
      if (m[1] === 'TYPE' && !TYPES.has((m[3] ?? '').trim())) {
        throw new ExpositionParseError(`line ${i + 1}: unknown metric type ${JSON.stringify(m[3] ?? '')}`);
      }
      names.add(m[2]!);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m)
      throw new ExpositionParseError(`line ${i + 1}: not a sample: ${JSON.stringify(line.slice(0, 120))}`);
    samples++;
    names.add(m[1]!);
    names.add(m[1]!.replace(SUFFIX, ''));
  }
  if (samples === 0) throw new ExpositionParseError('no samples');
  return { names, samples };
}
