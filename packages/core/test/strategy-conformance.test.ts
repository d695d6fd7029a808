import { blueGreen } from '@codegraph/strategy-bluegreen';
import { canary } from '@codegraph/strategy-canary';
import { rolling } from '../src/index.js';
import { testStrategy } from '../src/testing/index.js';

// The suite plugin authors run, against the three strategies we ship.
testStrategy({ strategy: () => rolling({ maxSurge: 1, maxUnavailable: 0 }), replicas: 3 });
testStrategy({
  name: 'rolling (surge 2, unavailable 1)',
  strategy: () => rolling({ maxSurge: 2, maxUnavailable: 1 }),
  replicas: 4,
});
testStrategy({ strategy: () => canary({ weights: [10, 50] }), replicas: 2 });
testStrategy({ strategy: () => blueGreen(), replicas: 2 });
