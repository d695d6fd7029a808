import { testTarget } from '@codegraph/release-core/testing';
import { afterAll, beforeAll } from 'vitest';
import { NginxHarness, requireNginx } from './helpers.js';

beforeAll(requireNginx);

const harness = new NginxHarness();
const leaks: number[] = [];

// The suite every Target passes, against nginxTarget with real nginx and real sample-service replicas.
testTarget({
  name: 'nginxTarget',
  capabilities: { route: true, traffic: true },
  async create() {
    const target = await harness.target();
    return {
      target,
      version: (label) => `${label}.0.0`,
      async cleanup() {
        leaks.push(...(await harness.cleanup()));
      },
    };
  },
});

afterAll(() => {
  if (leaks.length > 0) throw new Error(`processes left behind: ${leaks.join(', ')}`);
});
