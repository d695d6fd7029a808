import { afterEach, describe, expect, it } from 'vitest';
import { provision, restoreVersion, route, type Strategy } from '../src/index.js';
import { recordingTarget } from './helpers/lease-store.js';
import { releaseEnv } from './helpers/release-env.js';

type Env = Awaited<ReturnType<typeof releaseEnv>>;
let env: Env | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

const careless = (bad: 'pool' | 'weights'): Strategy => ({
  name: `careless-${bad}`,
  requires: ['route'],
  *deploy({ version, replicas }) {
    yield* provision({ pool: bad === 'pool' ? '../../etc' : version, version, replicas });
    yield* route(bad === 'weights' ? { [version]: 90 } : { [version]: 100 });
  },
  undo: restoreVersion,
});

describe('the engine checks what a strategy asks for', () => {
  it('an action that breaks core’s rules is refused before any target sees it, in a plan and in a release', async () => {
    env = await releaseEnv();
    const { target, changes } = recordingTarget(env.target);
    const bad = env.make({ target, strategy: careless('pool') });
    await expect(bad.plan({ version: 'v1' })).rejects.toMatchObject({
      code: 'CG_CONFIG_INVALID',
      plugin: 'careless-pool',
    });
    const result = await bad.release({ version: 'v1' });
    expect(result).toMatchObject({ status: 'failed', error: { code: 'CG_CONFIG_INVALID' } });
    expect(changes).toEqual([]);

    // Weights that do not add up to 100 never reach the target's route either.
    const uneven = env.make({ target, strategy: careless('weights') });
    const second = await uneven.release({ version: 'v1' });
    expect(second).toMatchObject({ status: 'failed', error: { code: 'CG_CONFIG_INVALID' } });
    expect(changes.filter((c) => c.startsWith('route'))).toEqual([]);
  });
});
