import type { ReleaseEvent, RunKind, RunStatus, Target, Weights } from '@codegraph/release-core';

/**
 * The format tag of a {@link RunRecording}; bumped when its shape changes incompatibly.
 *
 * @example
 * ```ts
 * if (recording.format !== recordingFormat) throw new Error(`cannot render ${recording.format}`)
 * ```
 */
export const recordingFormat = 'codegraph-release-recording/1';

/**
 * One measurement of one pool's traffic, taken by the recorder from the target's `traffic(pool)`.
 * Counts are what the target counted since its last reset; the `interval*` figures are the change
 * since the previous sample of the same pool, which is what the charts plot.
 *
 * @example
 * ```ts
 * const worst = recording.traffic.filter((s) => s.pool === 'v2').reduce((m, s) => Math.max(m, s.p95Ms ?? 0), 0)
 * ```
 */
export interface TrafficSample {
  /** ISO time of the sample. */
  at: string;
  pool: string;
  /** Requests the target counted for the pool (cumulative). */
  requests: number;
  /** Errors the target counted for the pool (cumulative). */
  errors: number;
  /** Requests since the previous sample of this pool. */
  intervalRequests: number;
  /** Errors since the previous sample of this pool. */
  intervalErrors: number;
  /** `intervalErrors / intervalRequests`; `null` when the pool took no request in the interval. */
  errorRate: number | null;
  /** Median latency of the interval's requests in ms; `null` without requests. */
  p50Ms: number | null;
  /** 95th percentile latency of the interval's requests in ms; `null` without requests. */
  p95Ms: number | null;
}

/**
 * Everything a report is rendered from: the run's events and the traffic samples, JSON-safe (write it
 * with `JSON.stringify`, render it later or elsewhere). Secrets are redacted before they are recorded.
 *
 * @example
 * ```ts
 * const recording = await recorder.stop()
 * await writeFile('run.json', JSON.stringify(recording))
 * // later, elsewhere:
 * const html = renderReportHtml(JSON.parse(await readFile('run.json', 'utf8')) as RunRecording)
 * ```
 */
export interface RunRecording {
  format: typeof recordingFormat;
  /** The recorded run; `undefined` when no run started while recording. */
  runId?: string | undefined;
  environment?: string | undefined;
  kind?: RunKind | undefined;
  /** The version the run was asked for. */
  version?: string | undefined;
  /** When recording started (ISO). */
  recordingStartedAt: string;
  /** When recording stopped (ISO). */
  recordingStoppedAt?: string | undefined;
  /** How the run ended, from its `run.finished` event; `undefined` while it runs. */
  status?: RunStatus | undefined;
  /** Milliseconds between traffic samples. */
  sampleEveryMs: number;
  /** Every event of the run, in order. */
  events: ReleaseEvent[];
  /** The traffic weights when recording started, before the run changed anything (from the target). */
  initialWeights?: Weights | undefined;
  /** Traffic samples of every pool, in time order. */
  traffic: TrafficSample[];
  /** Why some data is missing, in words (e.g. the target has no `traffic` capability). */
  notes: string[];
}

/**
 * Options of {@link recordRun}.
 *
 * @example
 * ```ts
 * recordRun(engine, { target, sampleEveryMs: 250, secrets: [process.env.API_KEY ?? ''] })
 * ```
 */
export interface RecordRunOptions {
  /**
   * The target whose optional `traffic(pool)` capability is sampled for the latency and error-rate
   * charts. Without it (or when it lacks `traffic`) the report has the timeline, steps, verdicts and
   * the weight chart only. @default undefined
   */
  target?: Target | undefined;
  /** Milliseconds between traffic samples. @default 500 */
  sampleEveryMs?: number | undefined;
  /**
   * The run to record. By default the recorder adopts the first run that starts after `recordRun`;
   * give an id to record a run that is already running (sampling starts at once). @default undefined
   */
  runId?: string | undefined;
  /** Pools to sample besides those the run's events name (provision, route). @default [] */
  pools?: readonly string[] | undefined;
  /** Secret values to redact from everything recorded, on top of the engine's own redaction. @default [] */
  secrets?: readonly string[] | undefined;
}

/**
 * Defaults of {@link RecordRunOptions}, in one place.
 *
 * @example
 * ```ts
 * recordRun(engine, { target, sampleEveryMs: recordRunDefaults.sampleEveryMs * 2 })
 * ```
 */
export const recordRunDefaults = { sampleEveryMs: 500 } as const;

/**
 * A running recorder, from {@link recordRun}.
 *
 * @example
 * ```ts
 * const recorder = recordRun(engine, { target })
 * void engine.release({ version: 'v2' })
 * await recorder.finished // the run ended and its last traffic sample is in
 * const files = await writeReport(await recorder.stop(), 'reports')
 * ```
 */
export interface RunRecorder {
  /** The recorded run's id, once it started. */
  readonly runId: string | undefined;
  /** Resolves when the recorded run's `run.finished` event arrived and its last sample was taken. */
  readonly finished: Promise<void>;
  /** What has been recorded so far (a copy); recording goes on. */
  snapshot(): RunRecording;
  /** Stops listening and sampling (after a last sample) and returns the recording. Idempotent. */
  stop(): Promise<RunRecording>;
}
