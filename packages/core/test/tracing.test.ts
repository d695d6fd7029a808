import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { traceEvents } from '../src/index.js';
import { releaseEnv } from './helpers/release-env.js';

// Traces are checked with the OpenTelemetry SDK's own in-memory exporter, on real releases of the
// sample service behind the local target.
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let env: Awaited<ReturnType<typeof releaseEnv>>;

beforeAll(async () => {
  env = await releaseEnv({ faults: { v3: { FAULT_ERROR_RATE: '1' } }, engine: { tracing: false } });
});
afterAll(async () => {
  await env.cleanup();
  await provider.shutdown();
});
afterEach(() => exporter.reset());

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const byName = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);

describe('OpenTelemetry traces of a run', () => {
  it('has one span per run, with a child per phase and a grandchild per step, each with its attributes', async () => {
    const stop = traceEvents(env.engine, { tracer: provider.getTracer('test') });
    const result = await env.engine.release({ version: 'v1' });
    stop();
    expect(result.status).toBe('succeeded');
    const spans = exporter.getFinishedSpans();
    const [run] = byName(spans, 'release staging');
    expect(run).toBeDefined();
    expect(run!.attributes).toMatchObject({
      'codegraph.run_id': result.runId,
      'codegraph.environment': 'staging',
      'codegraph.kind': 'release',
      'codegraph.version': 'v1',
      'codegraph.status': 'succeeded',
    });
    expect(run!.status.code).toBe(1);
    const phases = spans.filter((s) => s.name.startsWith('phase '));
    expect(phases.map((p) => p.name)).toEqual(
      expect.arrayContaining(['phase preflight', 'phase deploy', 'phase verify']),
    );
    for (const p of phases) expect(parentOf(p)).toBe(run!.spanContext().spanId);
    const deploy = byName(spans, 'phase deploy')[0]!;
    const steps = spans.filter((s) => s.name.startsWith('step '));
    expect(steps.length).toBeGreaterThan(0);
    for (const s of steps) expect(parentOf(s)).toBe(deploy.spanContext().spanId);
    const provision = steps.find((s) => s.attributes['codegraph.action.type'] === 'provision');
    expect(provision?.attributes['codegraph.pool']).toBeTypeOf('string');
    const gate = spans.find((s) => s.name.startsWith('analysis '));
    expect(gate?.attributes['codegraph.analysis.verdict']).toBe('pass');
    // Every span belongs to its run's trace.
    for (const s of spans) expect(s.spanContext().traceId).toBe(run!.spanContext().traceId);
  });

  it('marks a rolled-back release and its failed gate as errors, with the reason', async () => {
    const stop = traceEvents(env.engine, { tracer: provider.getTracer('test') });
    const result = await env.engine.release({ version: 'v3' });
    stop();
    expect(result.status).toBe('rolled-back');
    const spans = exporter.getFinishedSpans();
    const run = byName(spans, 'release staging')[0]!;
    expect(run.attributes['codegraph.status']).toBe('rolled-back');
    expect(run.status.code).toBe(2);
    const failedGate = spans.find(
      (s) => s.name.startsWith('analysis ') && s.attributes['codegraph.analysis.verdict'] === 'fail',
    );
    expect(failedGate?.status.code).toBe(2);
    expect(failedGate?.status.message).toBeTruthy();
    expect(byName(spans, 'phase undo')).toHaveLength(1);
  });

  it('traces by default with the global tracer provider, and not when tracing is false', async () => {
    trace.setGlobalTracerProvider(provider);
    try {
      const traced = env.make({ tracing: undefined });
      await traced.release({ version: 'v2' });
      expect(byName(exporter.getFinishedSpans(), 'release staging')).toHaveLength(1);
      exporter.reset();
      await env.engine.release({ version: 'v1' });
      expect(exporter.getFinishedSpans()).toHaveLength(0);
    } finally {
      trace.disable();
    }
  });

  it('uses the global tracer provider when no tracer is given, and traces nothing after stop()', async () => {
    trace.setGlobalTracerProvider(provider);
    try {
      const stop = traceEvents(env.engine);
      stop();
      await env.engine.release({ version: 'v2' });
      expect(exporter.getFinishedSpans()).toHaveLength(0);
      const again = traceEvents(env.engine);
      await env.engine.release({ version: 'v1' });
      again();
      expect(byName(exporter.getFinishedSpans(), 'release staging')).toHaveLength(1);
    } finally {
      trace.disable();
    }
  });
});
