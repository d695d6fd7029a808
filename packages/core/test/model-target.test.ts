import { modelTarget, testTarget } from '../src/testing/index.js';

// The in-memory model is the reference every real target is compared with: it passes the same suite.
testTarget({
  name: 'modelTarget',
  capabilities: { route: true, traffic: true },
  replicas: 2,
  timeoutMs: 5_000,
  create: () => ({ target: modelTarget(), version: (label) => `${label}.0.0` }),
});
