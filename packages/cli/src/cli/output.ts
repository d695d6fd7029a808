import {
  type AnalysisResult,
  createRedactor,
  describeAction,
  type Redactor,
  type ReleaseEvent,
  serializeError,
  type Weights,
} from '@codegraph/release-core';

/** How output is written: a TTY gets colours and live bars, pipes get plain lines, `--json` one JSON value per line. */
export type OutputMode = 'tty' | 'plain' | 'json';

const ansi = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;

/** Everything the CLI prints goes through here, redacted first. */
export class Output {
  readonly mode: OutputMode;
  readonly redactor: Redactor;
  private readonly out: NodeJS.WritableStream;
  private readonly err: NodeJS.WritableStream;
  private readonly color: boolean;
  private live = false;

  constructor(options: {
    json: boolean;
    out?: NodeJS.WriteStream;
    err?: NodeJS.WriteStream;
    secrets?: string[];
  }) {
    const out = options.out ?? process.stdout;
    this.out = out;
    this.err = options.err ?? process.stderr;
    this.mode = options.json ? 'json' : out.isTTY ? 'tty' : 'plain';
    this.color = this.mode === 'tty' && !process.env.NO_COLOR;
    this.redactor = createRedactor(options.secrets ?? []);
  }

  /** Hides these values from now on. */
  addSecrets(secrets: readonly string[]): void {
    this.redactor.add(...secrets);
  }

  paint(text: string, style: keyof typeof ansi): string {
    return this.color ? `\u001b[${ansi[style]}m${text}\u001b[0m` : text;
  }

  /** A live line (a running action, a progress bar) is replaced by whatever is printed next. */
  private endLive(): void {
    if (this.live) {
      this.out.write('\r\u001b[2K');
      this.live = false;
    }
  }

  /** A transient line on a TTY, replaced by the next one; nothing elsewhere. */
  transient(text: string): void {
    if (this.mode !== 'tty') return;
    this.endLive();
    this.out.write(this.redactor.string(text));
    this.live = true;
  }

  /** A human line (not in `--json` mode). */
  line(text = ''): void {
    if (this.mode === 'json') return;
    this.endLive();
    this.out.write(`${this.redactor.string(text)}\n`);
  }

  /** A JSON value on its own line (only in `--json` mode). */
  json(value: unknown): void {
    if (this.mode !== 'json') return;
    this.out.write(`${JSON.stringify(this.redactor.value(value))}\n`);
  }

  /** A one-line warning on stderr. */
  warn(text: string): void {
    this.endLive();
    this.err.write(`codegraph-release: ${this.redactor.string(text)}\n`);
  }

  /** The one-line error: `codegraph-release: CG_CODE: message` on stderr, and an `error` record in `--json` mode. */
  error(err: unknown, exitCode: number): void {
    const e = serializeError(err);
    // One line, whatever the error carries (nginx -t output, a stack of causes): lines joined, none lost.
    const message = this.redactor.string(e.message.trim().replace(/\s*\n\s*/g, ' | '));
    this.endLive();
    this.err.write(`codegraph-release: ${e.code}: ${message}\n`);
    this.json({ type: 'error', code: e.code, message, exitCode });
  }

  /** A progress bar on a TTY (redrawn in place); nothing elsewhere. */
  progress(label: string, done: number, total: number, detail = ''): void {
    if (this.mode !== 'tty') return;
    const width = 24;
    const filled = total > 0 ? Math.round((done / total) * width) : 0;
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    this.out.write(`\r\u001b[2K${label} ${bar} ${done}/${total} ${this.redactor.string(detail)}`);
    this.live = true;
  }

  /** Renders one engine event: a line (or two) for humans, the event itself for machines. */
  event(e: ReleaseEvent): void {
    if (this.mode === 'json') {
      this.json(e);
      return;
    }
    if (e.type === 'action.started' && e.action.type !== 'pause') {
      this.transient(this.paint(`    ${describeAction(e.action)} ...`, 'dim'));
      return;
    }
    const text = renderEvent(e, this);
    if (text !== undefined) this.line(text);
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

function weightBar(w: Weights, o: Output): string {
  const cells = 30;
  return Object.entries(w)
    .filter(([, n]) => n > 0)
    .map(
      ([p, n], i) =>
        o.paint('█'.repeat(Math.max(1, Math.round((n / 100) * cells))), i % 2 ? 'yellow' : 'green') +
        ` ${p} ${n}%`,
    )
    .join(' ');
}

/** The analysis verdict and, when it did not pass, the checks that did not. */
export function renderAnalysis(r: AnalysisResult, o: Output): string {
  const style = r.verdict === 'pass' ? 'green' : r.verdict === 'fail' ? 'red' : 'yellow';
  const lines = [`    analysis ${r.name}: ${o.paint(r.verdict.toUpperCase(), style)} (${r.reason})`];
  if (r.pause)
    lines.push(
      o.paint(
        "      held for an operator (the gate's policy): codegraph-release promote passes it, abort undoes the run",
        'yellow',
      ),
    );
  if (r.verdict !== 'pass') {
    const last = r.measurements.at(-1);
    for (const c of last?.checks ?? []) {
      if (c.verdict === 'pass') continue;
      lines.push(
        `      ${c.verdict} ${c.name}: observed ${JSON.stringify(c.observed)}, threshold ${JSON.stringify(c.threshold)} (${c.reason})`,
      );
    }
  }
  return lines.join('\n');
}

function renderEvent(e: ReleaseEvent, o: Output): string | undefined {
  switch (e.type) {
    case 'run.started': {
      const what = e.kind === 'rollback' ? `emergency rollback to ${e.version}` : `${e.kind} ${e.version}`;
      return o.paint(
        `[${e.environment}] ${what}${e.from ? ` (from ${e.from})` : ''}${e.resumed ? ', resumed' : ''}: run ${e.runId}`,
        'bold',
      );
    }
    case 'phase.started':
      return `  phase ${e.phase}`;
    case 'phase.finished':
      return e.ok
        ? o.mode === 'tty'
          ? o.paint(`  phase ${e.phase} done in ${seconds(e.durationMs)}`, 'dim')
          : undefined
        : o.paint(`  phase ${e.phase} failed: ${e.error?.code ?? ''} ${e.error?.message ?? ''}`, 'red');
    case 'action.started':
      // Pauses are announced everywhere: a log that goes quiet for minutes should say why.
      if (e.action.type === 'pause')
        return o.paint(
          `    ${describeAction(e.action)}: ${e.action.durationMs === undefined ? '' : 'or end it early with '}codegraph-release promote --env ${e.environment} (or abort)`,
          'yellow',
        );
      return undefined; // a TTY shows it as a transient line
    case 'action.finished':
      if (e.action.type === 'analyze') return undefined; // analysis.finished says it better
      return `    ${describeAction(e.action)} (${seconds(e.durationMs)})`;
    case 'traffic.shifted':
      return o.mode === 'tty' ? `    traffic ${weightBar(e.weights, o)}` : undefined;
    case 'analysis.finished':
      return renderAnalysis(e.result, o);
    case 'analysis.measured': {
      // Every measurement as it is taken: a CI log never goes silent during a gate.
      const style = e.verdict === 'pass' ? 'dim' : e.verdict === 'fail' ? 'red' : 'yellow';
      const facts = [
        e.limit !== undefined ? `limit ${e.limit}` : undefined,
        e.samples !== undefined ? `n=${e.samples}` : undefined,
      ].filter(Boolean);
      return o.paint(
        `      measured ${e.gate} #${e.round + 1} ${e.metric}: ${JSON.stringify(e.value)}${facts.length ? ` (${facts.join(', ')})` : ''} ${e.verdict}${e.dryRun ? ' [dry run]' : ''}`,
        style,
      );
    }
    case 'backup.created':
      return `    backup ${e.backupId} taken by ${e.provider}`;
    case 'backup.failed':
      return o.paint(`    backup by ${e.provider} failed: ${e.error.code}: ${e.error.message}`, 'red');
    case 'notification.failed':
      return o.paint(`    notification ${e.eventType} to ${e.notifier} failed: ${e.error.message}`, 'yellow');
    case 'plugin.abandoned':
      return o.paint(
        `    ${e.pluginKind} ${e.plugin}: ${e.method} abandoned after ${e.afterMs} ms (${e.reason})`,
        'yellow',
      );
    case 'run.finished':
      return undefined; // the command prints the result
  }
}
