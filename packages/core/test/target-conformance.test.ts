import { afterAll } from 'vitest';
import { localTarget } from '../src/index.js';
import { testTarget } from '../src/testing/index.js';
import { alive, LocalHarness, recordedPids } from './helpers/sample.js';

const harness = new LocalHarness();
const seen = new Set<number>();

// The same suite plugin authors run, against the embedded default target and the real sample service.
testTarget({
  name: 'localTarget',
  capabilities: { route: true, traffic: true },
  async create() {
    const stateDir = await harness.dir('cg-conformance-');
    const target = localTarget({ stateDir, command: LocalHarness.command(), readyTimeoutMs: 10_000 });
    return {
      target,
      version: (label) => `${label}.0.0`,
      async cleanup() {
        for (const pid of await recordedPids(stateDir)) seen.add(pid);
        await target.destroy();
        await harness.cleanup();
      },
    };
  },
});

afterAll(() => {
  const left = [...seen].filter(alive);
  for (const pid of left) process.kill(pid, 'SIGKILL');
  if (left.length > 0) throw new Error(`processes left behind: ${left.join(', ')}`);
});
