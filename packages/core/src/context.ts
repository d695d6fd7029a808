import type { Logger } from './logger.js';

/** What every plugin call receives: cancellation and a logger. */
export interface OperationContext {
  /** Cancels the operation; plugins pass it to every async call they make. */
  signal?: AbortSignal | undefined;
  /** The engine's logger, scoped to the plugin. */
  logger?: Logger | undefined;
}
