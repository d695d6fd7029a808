import type { Strategy } from '@codegraph/release-core';
import { type BlueGreenOptions, blueGreen, blueGreenDefaults } from '@codegraph/strategy-bluegreen';
import { expectTypeOf, test } from 'vitest';

// Checked by `tsc` (and `vitest --typecheck`): the public types say what the runtime checks.

test('blueGreen makes a Strategy from typed options', () => {
  expectTypeOf(blueGreen()).toMatchTypeOf<Strategy>();
  expectTypeOf(blueGreen).parameter(0).toEqualTypeOf<BlueGreenOptions | undefined>();
  expectTypeOf(blueGreenDefaults.scaleDownDelayMs).toEqualTypeOf<30_000>();
  blueGreen({
    prePromotionAnalysis: false,
    postPromotionAnalysis: { verifiers: ['proxy'], gate: { count: 3 } },
  });
  // @ts-expect-error durations are milliseconds as numbers, not '30s'
  blueGreen({ scaleDownDelayMs: '30s' });
  // @ts-expect-error an analysis is an object or false, never true
  blueGreen({ prePromotionAnalysis: true });
  // @ts-expect-error Argo's field names in seconds are not options here
  blueGreen({ scaleDownDelaySeconds: 30 });
});
