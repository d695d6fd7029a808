import { checkIdentifier, checkVersion } from '../rules.js';
import type { Store } from '../store/types.js';
import { approvalSubject } from './state.js';

/** Options of {@link approvePipeline}. */
export interface ApproveOptions {
  /** The pipeline's name (its store environment is `pipeline.<name>`). */
  pipeline: string;
  stage: string;
  version: string;
  /** The approver's identity, recorded in the pipeline's journal. */
  by: string;
  /** How long to wait for the running pipeline's answer. @default 30_000 */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Approves a stage of a pipeline from any process or host: an `approve` control request in the
 * pipeline's store, answered by the process driving the pipeline. Resolves `undefined` (and withdraws
 * the request) when no pipeline answered within `timeoutMs`.
 *
 * @example
 * ```ts
 * const answer = await approvePipeline(fileStore({ dir: '.codegraph-release' }), {
 *   pipeline: 'search', stage: 'production', version: 'v1.4.0', by: 'alice',
 * })
 * if (!answer?.applied) console.error(answer?.message ?? 'no pipeline is waiting')
 * ```
 */
export async function approvePipeline(
  store: Store,
  options: ApproveOptions,
): Promise<{ applied: boolean; message?: string | undefined } | undefined> {
  const { pipeline, stage, version, by, timeoutMs = 30_000, signal } = options;
  checkIdentifier(pipeline, 'pipeline');
  checkIdentifier(stage, 'stage');
  checkVersion(version, 'version');
  checkIdentifier(by, 'approver');
  const environment = `pipeline.${pipeline}`;
  const sent = await store.sendControl({
    environment,
    action: 'approve',
    by,
    subject: approvalSubject(stage, version),
  });
  const reply = await store.waitForReply(environment, sent.id, { timeoutMs, signal });
  if (reply) return { applied: reply.applied, message: reply.message };
  if (await store.withdrawControl(environment, sent.id)) return undefined;
  // Consumed just as we gave up: its answer is on its way.
  const late = await store.waitForReply(environment, sent.id, { timeoutMs: 5_000 });
  return late ? { applied: late.applied, message: late.message } : undefined;
}
