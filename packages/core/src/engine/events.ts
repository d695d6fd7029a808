import type { ReleaseEvent, ReleaseEventOf, ReleaseEventType } from '../events/types.js';

/** An event as the engine's code emits it: the engine adds the run, environment, kind and time. */
export type EventInput = ReleaseEvent extends infer E
  ? E extends ReleaseEvent
    ? Omit<E, 'runId' | 'environment' | 'kind' | 'time'>
    : never
  : never;

/** A listener of one event type, or of every type with `'*'`. */
export type EventListener<T extends ReleaseEventType | '*'> = (
  event: T extends ReleaseEventType ? ReleaseEventOf<T> : ReleaseEvent,
) => void;

/** Options of an event stream. */
export interface EventStreamOptions {
  /** Ends the stream. */
  signal?: AbortSignal;
  /** Only these types. @default every type */
  types?: ReadonlyArray<ReleaseEventType>;
}

/** Typed publish/subscribe with listeners and async iterators. A throwing listener is isolated. */
export class EventHub {
  readonly #listeners = new Map<string, Set<(event: ReleaseEvent) => void>>();
  readonly #onListenerError: (error: unknown) => void;

  constructor(onListenerError: (error: unknown) => void) {
    this.#onListenerError = onListenerError;
  }

  on<T extends ReleaseEventType | '*'>(type: T, listener: EventListener<T>): () => void {
    let set = this.#listeners.get(type);
    if (!set) {
      set = new Set();
      this.#listeners.set(type, set);
    }
    const fn = listener as (event: ReleaseEvent) => void;
    set.add(fn);
    return () => set.delete(fn);
  }

  emit(event: ReleaseEvent): void {
    for (const key of [event.type, '*']) {
      for (const fn of this.#listeners.get(key) ?? []) {
        try {
          fn(event);
        } catch (err) {
          this.#onListenerError(err);
        }
      }
    }
  }

  /** Every event from now on, until the signal aborts. */
  async *stream(options: EventStreamOptions = {}): AsyncGenerator<ReleaseEvent> {
    const queue: ReleaseEvent[] = [];
    let wake: (() => void) | undefined;
    const types = options.types ? new Set<string>(options.types) : undefined;
    const off = this.on('*', (event) => {
      if (types && !types.has(event.type)) return;
      queue.push(event);
      wake?.();
    });
    const onAbort = () => wake?.();
    options.signal?.addEventListener('abort', onAbort);
    try {
      while (!options.signal?.aborted) {
        if (queue.length === 0) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
          continue;
        }
        yield queue.shift()!;
      }
    } finally {
      off();
      options.signal?.removeEventListener('abort', onAbort);
    }
  }
}
