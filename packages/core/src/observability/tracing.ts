import { createRequire } from 'node:module';
import type { ReleaseEvent } from '../events/types.js';

/** An attribute value as OpenTelemetry accepts it. */
export type SpanAttributeValue = string | number | boolean;

/** The part of an OpenTelemetry `Span` the engine uses (structural, so core needs no OTel types). */
export interface SpanLike {
  setAttributes(attributes: Record<string, SpanAttributeValue>): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  addEvent(name: string, attributes?: Record<string, SpanAttributeValue>, time?: Date): unknown;
  end(endTime?: Date): void;
}

/** The part of an OpenTelemetry `Tracer` the engine uses. */
export interface TracerLike {
  startSpan(
    name: string,
    options?: { attributes?: Record<string, SpanAttributeValue>; startTime?: Date },
    context?: unknown,
  ): SpanLike;
}

/** Options of {@link traceEvents}. */
export interface TracingOptions {
  /**
   * The tracer spans are made with. @default the global tracer provider's `@codegraph/release-core`
   * tracer from `@opentelemetry/api` (an optional peer dependency: without it, and without this
   * option, nothing is traced)
   */
  tracer?: TracerLike;
}

/** Anything that emits the engine's events: a `ReleaseEngine`, a pipeline. */
export interface EventSource {
  on(type: '*', listener: (event: ReleaseEvent) => void): () => void;
}

interface OtelApi {
  trace: {
    getTracer(name: string, version?: string): TracerLike;
    setSpan(context: unknown, span: SpanLike): unknown;
  };
  context: { active(): unknown };
}

const STATUS_OK = 1;
const STATUS_ERROR = 2;

function loadOtel(): OtelApi | undefined {
  try {
    return createRequire(import.meta.url)('@opentelemetry/api') as OtelApi;
  } catch {
    return undefined;
  }
}

/**
 * Turns the engine's events into OpenTelemetry spans: one per run, with a child per phase, a child of
 * the phase per step (an `analyze` step is the analysis gate's span, with its verdict), and span events
 * for traffic shifts and backups. Spans carry `codegraph.*` attributes (run id, environment, kind,
 * version, phase, action, pool, verdict, status). Returns a function that stops tracing.
 *
 * @example
 * ```ts
 * import { trace } from '@opentelemetry/api'
 * const stop = traceEvents(engine, { tracer: trace.getTracer('release-service') })
 * await engine.release({ version: 'v2' })
 * stop()
 * ```
 */
export function traceEvents(source: EventSource, options: TracingOptions = {}): () => void {
  const api = loadOtel();
  const tracer = options.tracer ?? api?.trace.getTracer('@codegraph/release-core');
  if (!tracer) return () => {};
  const runs = new Map<string, SpanLike>();
  const phases = new Map<string, SpanLike>();
  const steps = new Map<string, SpanLike>();
  const child = (parent: SpanLike | undefined) =>
    parent && api ? api.trace.setSpan(api.context.active(), parent) : undefined;
  const start = (
    name: string,
    time: string,
    attributes: Record<string, SpanAttributeValue>,
    parent?: SpanLike,
  ) => tracer.startSpan(name, { attributes, startTime: new Date(time) }, child(parent));

  const off = source.on('*', (e) => {
    const runKey = e.runId;
    switch (e.type) {
      case 'run.started': {
        runs.set(
          runKey,
          start(`${e.kind} ${e.environment}`, e.time, {
            'codegraph.run_id': e.runId,
            'codegraph.environment': e.environment,
            'codegraph.kind': e.kind,
            'codegraph.version': e.version,
            ...(e.from ? { 'codegraph.from': e.from } : {}),
            ...(e.resumed ? { 'codegraph.resumed': true } : {}),
          }),
        );
        break;
      }
      case 'phase.started':
        phases.set(
          `${runKey}/${e.phase}`,
          start(
            `phase ${e.phase}`,
            e.time,
            { 'codegraph.run_id': e.runId, 'codegraph.phase': e.phase },
            runs.get(runKey),
          ),
        );
        break;
      case 'phase.finished': {
        const span = phases.get(`${runKey}/${e.phase}`);
        if (!span) break;
        phases.delete(`${runKey}/${e.phase}`);
        span.setAttributes({ 'codegraph.duration_ms': e.durationMs });
        span.setStatus(
          e.ok ? { code: STATUS_OK } : { code: STATUS_ERROR, message: e.error?.message ?? 'failed' },
        );
        span.end(new Date(e.time));
        break;
      }
      case 'action.started': {
        const a = e.action;
        const attributes: Record<string, SpanAttributeValue> = {
          'codegraph.run_id': e.runId,
          'codegraph.phase': e.phase,
          'codegraph.action.type': a.type,
          'codegraph.action.index': e.index,
        };
        if ('pool' in a && typeof a.pool === 'string') attributes['codegraph.pool'] = a.pool;
        if (a.type === 'route') attributes['codegraph.weights'] = JSON.stringify(a.weights);
        if (a.type === 'analyze') attributes['codegraph.analysis.name'] = a.name;
        const name = a.type === 'analyze' ? `analysis ${a.name}` : `step ${a.type}`;
        steps.set(
          `${runKey}/${e.phase}/${e.index}`,
          start(name, e.time, attributes, phases.get(`${runKey}/${e.phase}`)),
        );
        break;
      }
      case 'action.finished': {
        const key = `${runKey}/${e.phase}/${e.index}`;
        const span = steps.get(key);
        if (!span) break;
        steps.delete(key);
        const outcome = e.outcome as { verdict?: string; reason?: string };
        if (e.action.type === 'analyze' && typeof outcome.verdict === 'string') {
          span.setAttributes({
            'codegraph.analysis.verdict': outcome.verdict,
            'codegraph.analysis.reason': outcome.reason ?? '',
          });
          span.setStatus(
            outcome.verdict === 'pass'
              ? { code: STATUS_OK }
              : { code: STATUS_ERROR, message: outcome.reason ?? outcome.verdict },
          );
        } else span.setStatus({ code: STATUS_OK });
        span.setAttributes({ 'codegraph.duration_ms': e.durationMs });
        span.end(new Date(e.time));
        break;
      }
      case 'analysis.finished': {
        // The verify phase's gate is not a strategy step: give it its own span under the phase.
        const parent =
          [...phases.entries()].find(([k]) => k.startsWith(`${runKey}/`))?.[1] ?? runs.get(runKey);
        const inStep = [...steps.keys()].some((k) => k.startsWith(`${runKey}/`));
        if (inStep) break;
        const span = start(
          `analysis ${e.result.name}`,
          e.time,
          {
            'codegraph.run_id': e.runId,
            'codegraph.analysis.name': e.result.name,
            'codegraph.analysis.verdict': e.result.verdict,
            'codegraph.analysis.reason': e.result.reason,
            'codegraph.version': e.version,
          },
          parent,
        );
        span.setStatus(
          e.result.verdict === 'pass'
            ? { code: STATUS_OK }
            : { code: STATUS_ERROR, message: e.result.reason },
        );
        span.end(new Date(e.time));
        break;
      }
      case 'traffic.shifted':
        runs
          .get(runKey)
          ?.addEvent('traffic.shifted', { 'codegraph.weights': JSON.stringify(e.weights) }, new Date(e.time));
        break;
      case 'backup.created':
        runs.get(runKey)?.addEvent('backup.created', { 'codegraph.backup_id': e.backupId }, new Date(e.time));
        break;
      case 'run.finished': {
        const span = runs.get(runKey);
        if (!span) break;
        runs.delete(runKey);
        // Whatever a crash left open under this run ends with it.
        for (const map of [steps, phases]) {
          for (const [k, s] of map) {
            if (!k.startsWith(`${runKey}/`)) continue;
            s.setStatus({ code: STATUS_ERROR, message: 'ended with its run' });
            s.end(new Date(e.time));
            map.delete(k);
          }
        }
        span.setAttributes({
          'codegraph.status': e.status,
          'codegraph.duration_ms': e.durationMs,
          ...(e.serving ? { 'codegraph.serving': e.serving } : {}),
          ...(e.backupId ? { 'codegraph.backup_id': e.backupId } : {}),
        });
        span.setStatus(
          e.status === 'succeeded'
            ? { code: STATUS_OK }
            : { code: STATUS_ERROR, message: e.reason ?? e.error?.message ?? e.status },
        );
        span.end(new Date(e.time));
        break;
      }
      default:
        break;
    }
  });
  return off;
}
