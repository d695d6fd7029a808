import {
  createRedactor,
  type PoolTraffic,
  type ReleaseEngine,
  type ReleaseEvent,
} from '@codegraph/release-core';
import {
  type RecordRunOptions,
  type RunRecorder,
  type RunRecording,
  recordingFormat,
  recordRunDefaults,
  type TrafficSample,
} from './types.js';

/** The `p`-th percentile (0..1) of `values` by nearest rank; `null` for no values. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[rank]!;
}

/** How long `stop()` waits for the sample that closes a finished run. */
const lastSampleWaitMs = 5_000;

/** A JSON round trip: what a recording holds must survive `JSON.stringify` unchanged. */
const jsonCopy = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/**
 * Records one run of an engine for a release report: every event of the run, and, when the target
 * can tell (`traffic(pool)`), each pool's requests, errors and latencies every `sampleEveryMs`.
 * Call it before `engine.release(...)`/`rollback(...)`; it adopts the first run that starts.
 *
 * @example
 * ```ts
 * import { recordRun, writeReport } from '@codegraph/release-cli'
 *
 * const recorder = recordRun(engine, { target, sampleEveryMs: 250 })
 * const result = await engine.release({ version: 'v2' })
 * const files = await writeReport(await recorder.stop(), '.release/reports')
 * console.log(`report: ${files.html}`)
 * ```
 */
export function recordRun(engine: Pick<ReleaseEngine, 'on'>, options: RecordRunOptions = {}): RunRecorder {
  const sampleEveryMs = options.sampleEveryMs ?? recordRunDefaults.sampleEveryMs;
  if (!Number.isFinite(sampleEveryMs) || sampleEveryMs < 10) {
    throw new RangeError(`recordRun: sampleEveryMs must be a number >= 10, got ${String(sampleEveryMs)}`);
  }
  const redactor = createRedactor(options.secrets ?? []);
  const target = options.target;
  const recording: RunRecording = {
    format: recordingFormat,
    runId: options.runId,
    recordingStartedAt: new Date().toISOString(),
    sampleEveryMs,
    events: [],
    traffic: [],
    notes: [],
  };
  if (!target) recording.notes.push('no target given: latency and error-rate charts are empty');
  else if (!target.traffic) {
    recording.notes.push(
      `target ${target.name} has no traffic capability: latency and error-rate charts are empty`,
    );
  }

  const pools = new Set<string>(options.pools ?? []);
  const previous = new Map<string, PoolTraffic>();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  let stopping: Promise<RunRecording> | undefined;
  let closing = false;
  let markFinished: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    markFinished = resolve;
  });

  async function sampleOnce(): Promise<void> {
    const traffic = target?.traffic?.bind(target);
    if (!traffic) return;
    for (const pool of pools) {
      if (controller.signal.aborted) return;
      let now: PoolTraffic;
      try {
        now = await traffic(pool, { signal: controller.signal });
      } catch {
        continue; // the pool is not there yet, or was retired: nothing to count
      }
      const before = previous.get(pool);
      previous.set(pool, now);
      // The first sight of a pool is its baseline; a reset (counts went down) starts a new one.
      if (!before || before.since !== now.since || now.requests < before.requests) continue;
      const intervalRequests = now.requests - before.requests;
      const intervalErrors = Math.max(0, now.errors - before.errors);
      const latencies = intervalRequests > 0 ? now.latencyMs.slice(-intervalRequests) : [];
      const sample: TrafficSample = {
        at: new Date().toISOString(),
        pool,
        requests: now.requests,
        errors: now.errors,
        intervalRequests,
        intervalErrors,
        errorRate: intervalRequests > 0 ? intervalErrors / intervalRequests : null,
        p50Ms: percentile(latencies, 0.5),
        p95Ms: percentile(latencies, 0.95),
      };
      recording.traffic.push(sample);
    }
  }

  /** Samples unless a sample is already running: ticks never pile up on a slow target. */
  let busy = false;
  function tick(): Promise<void> {
    if (busy) return inFlight;
    busy = true;
    inFlight = sampleOnce().finally(() => {
      busy = false;
    });
    return inFlight;
  }

  function startSampling(): void {
    if (timer || !target?.traffic || closing) return;
    void tick();
    timer = setInterval(() => void tick(), sampleEveryMs);
    timer.unref();
  }

  function stopSampling(): void {
    if (timer) clearInterval(timer);
    timer = undefined;
  }

  function learnPools(event: ReleaseEvent): void {
    if (event.type === 'traffic.shifted') for (const pool of Object.keys(event.weights)) pools.add(pool);
    if (event.type === 'action.started' || event.type === 'action.finished') {
      const a = event.action;
      if (a.type === 'provision' || a.type === 'retire' || a.type === 'promote') pools.add(a.pool);
      if (a.type === 'route') for (const pool of Object.keys(a.weights)) pools.add(pool);
    }
  }

  async function learnTargetPools(): Promise<void> {
    try {
      const state = await target?.describe({ signal: controller.signal });
      for (const pool of state?.pools ?? []) pools.add(pool.name);
      // The weights before the release: the charts start from where traffic stood.
      if (state && recording.events.every((e) => e.type !== 'traffic.shifted'))
        recording.initialWeights = Object.fromEntries(state.pools.map((p) => [p.name, p.weight]));
    } catch {
      // The events still name every pool the run touches.
    }
  }

  const off = engine.on('*', (event) => {
    if (closing) return;
    if (recording.runId === undefined && event.type === 'run.started') {
      recording.runId = event.runId;
      startSampling();
    }
    if (event.runId !== recording.runId) return;
    const safe = redactor.value(jsonCopy(event));
    recording.events.push(safe);
    recording.environment ??= safe.environment;
    recording.kind ??= safe.kind;
    if (safe.type === 'run.started') recording.version = safe.version;
    learnPools(safe);
    if (safe.type === 'run.finished') {
      recording.version ??= safe.version;
      recording.status = safe.status;
      stopSampling();
      // The last sample closes the charts at the end of the run.
      void inFlight.then(() => tick()).then(markFinished, markFinished);
    }
  });

  // Knowing the serving pools before the run starts lets the first sample at run.started be their
  // baseline, so the charts begin one interval into the run.
  const knownPools = target ? learnTargetPools() : Promise.resolve();
  if (options.runId !== undefined) void knownPools.then(startSampling);

  return {
    get runId() {
      return recording.runId;
    },
    finished,
    snapshot: () => jsonCopy(recording),
    async stop() {
      stopping ??= (async () => {
        closing = true;
        off();
        stopSampling();
        if (recording.status !== undefined) {
          // The last sample closes the charts, but a target that stopped answering must not hold us.
          let timeout: NodeJS.Timeout | undefined;
          await Promise.race([
            finished,
            new Promise((resolve) => (timeout = setTimeout(resolve, lastSampleWaitMs))),
          ]);
          clearTimeout(timeout);
        }
        controller.abort();
        await inFlight.catch(() => {});
        recording.recordingStoppedAt = new Date().toISOString();
        return jsonCopy(recording);
      })();
      return jsonCopy(await stopping);
    },
  };
}
