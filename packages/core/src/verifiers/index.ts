// Built-in verifiers: the deployment validation suite, Prometheus analysis and proxy analysis.
export { gateDefaults } from '../analysis/gate.js';
export * from './http/index.js';
export type { LatencySummary } from './utils/stats.js';
