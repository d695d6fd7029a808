import { createRedactor } from '@codegraph/release-core';
import { describe, expect, it } from 'vitest';

// Core behaviour blue-green relies on, pinned where an engine bug was found while building it.

describe('core engine behaviour blue-green relies on', () => {
  // Journal.step stores `redactor.value(result)`. The preflight result `{ state, stable }` holds the
  // serving pool twice (`stable` is one of `state.pools`); core before 53faad5 replayed `stable` as the
  // string "[Circular]", so a resumed run lost `from` and a failure after resume skipped the undo.
  // blue-green also reads the serving pool from `state.pools`, so journals written then still replay.
  it('redactor.value keeps an object that is referenced twice (a shared reference is not a cycle)', () => {
    const pool = { name: 'blue', version: 'v1' };
    const copy = createRedactor().value({ state: { pools: [pool] }, stable: pool });
    expect(copy.stable).toEqual(pool);
    const cycle: Record<string, unknown> = { name: 'loop' };
    cycle.self = cycle;
    expect(createRedactor().value(cycle)).toEqual({ name: 'loop', self: '[Circular]' });
  });
});
