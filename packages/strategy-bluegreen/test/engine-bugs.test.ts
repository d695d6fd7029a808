import { createRedactor } from '@codegraph/release-core';
import { describe, expect, it } from 'vitest';

// Engine bugs found while building blue-green, each as the smallest test that shows it. They are
// `it.fails`: they pass while the bug is there and turn red once core is fixed (then make them `it`).

describe('core engine bugs', () => {
  // Journal.step stores `redactor.value(result)`. The preflight result `{ state, stable }` holds the
  // serving pool twice (`stable` is one of `state.pools`), so a resumed run replays `stable` as the
  // string "[Circular]": `from` becomes undefined and a failure after resume skips the undo
  // ("first release, nothing to roll back to"). Fix: in `walk`, `seen.delete(input)` after walking
  // an object, so only true cycles (ancestors) are cut. blue-green works around it by reading the
  // serving pool from `state.pools`.
  it.fails('redactor.value keeps an object that is referenced twice (not a cycle)', () => {
    const pool = { name: 'blue', version: 'v1' };
    const copy = createRedactor().value({ state: { pools: [pool] }, stable: pool });
    expect(copy.stable).toEqual(pool);
  });
});
