// Engine bugs found while building the canary, each as the smallest test that showed it; fixed in core
// (1640bc2), they stay as regression tests of what an operator's abort of a canary must do.
import { canary } from '@codegraph/strategy-canary';
import { afterEach, describe, expect, it } from 'vitest';
import { engineOn, localEnv, steadyLoad } from './helpers/env.js';
import { until } from './helpers/scenarios.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('engine (packages/core/src/engine)', () => {
  // Was: engine.ts `waitForApproval` listened for 'abort' on a signal that could already be aborted (and
  // flows.ts `plan()` never checked the signal between actions): an abort landing between the pause's
  // `action.started` event and the wait starting was lost, and the run waited for an approval forever.
  it('ends a run that is aborted as its pause starts', async () => {
    const local = await localEnv({});
    cleanups.push(local.cleanup);
    const { engine } = engineOn(local.target, local.dir, {
      strategy: canary({ steps: [{ setWeight: 10 }, { pause: {} }] }),
      verifiers: [],
    });
    expect((await engine.release({ version: 'v1' })).status).toBe('succeeded');
    engine.on('action.started', (e) => {
      if (e.action.type === 'pause') engine.abort(e.runId, 'abort at the pause');
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'still waiting'>((resolve) => {
      timer = setTimeout(() => resolve('still waiting'), 5_000);
    });
    const outcome = await Promise.race([engine.release({ version: 'v2' }).then((r) => r.status), deadline]);
    clearTimeout(timer);
    expect(outcome).toBe('rolled-back');
  });

  // Was: engine.ts `abort()` aborted the run with `new ConfigInvalidError(reason)` and an approval pause
  // rejected with it as is: an operator's abort said CG_CONFIG_INVALID, the same abort in a timed pause
  // CG_ABORTED.
  it('reports an operator abort at an approval pause as CG_ABORTED', async () => {
    const local = await localEnv({});
    cleanups.push(local.cleanup);
    const { engine } = engineOn(local.target, local.dir, {
      strategy: canary({ steps: [{ setWeight: 10 }, { pause: {} }] }),
      verifiers: [],
    });
    expect((await engine.release({ version: 'v1' })).status).toBe('succeeded');
    engine.on('action.started', (e) => {
      if (e.action.type !== 'pause') return;
      // As an operator would: once the canary has taken some traffic at the pause.
      void (async () => {
        const seen = (await local.target.traffic('v2')).requests;
        await until(
          async () => (await local.target.traffic('v2')).requests >= seen + 5,
          10_000,
          'canary traffic',
        );
        engine.abort(e.runId, 'operator abort');
      })();
    });
    const load = steadyLoad(await local.target.endpoint(), 1);
    const result = await engine.release({ version: 'v2' }).finally(() => load.stop());
    expect(result.status).toBe('rolled-back');
    expect(result.error?.code).toBe('CG_ABORTED');
  });
});
