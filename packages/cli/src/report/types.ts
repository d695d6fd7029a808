import type { ReleaseEvent, RunKind, RunStatus, Target } from '@codegraph/release-core';

/** The format tag of a {@link RunRecording}; bumped when its shape changes incompatibly. */
export const recordingFormat = 'codegraph-release-recording/1';

/**
 * One measurement of one pool's traffic, taken by the recorder from the target's `traffic(pool)`.
 * Counts are what the target counted since its last reset; the `interval*` figures are the change
 * since the previous sample of the same pool, which is what the charts plot.
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
  /** Traffic samples of every pool, in time order. */
  traffic: TrafficSample[];
  /** Why some data is missing, in words (e.g. the target has no `traffic` capability). */
  notes: string[];
}

/** Options of {@link recordRun}. */
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

/** Defaults of {@link RecordRunOptions}, in one place. */
export const recordRunDefaults = { sampleEveryMs: 500 } as const;

/** A running recorder, from {@link recordRun}. */
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
