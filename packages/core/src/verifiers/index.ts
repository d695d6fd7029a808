// Built-in verifiers: the deployment validation suite, Prometheus analysis and proxy analysis.
export { gateDefaults } from '../analysis/gate.js';
export {
  type CommandCheckOptions,
  commandCheck,
  commandCheckDefaults,
} from './command.js';
export * from './http/index.js';
export {
  type MetricThreshold,
  type PrometheusAnalysisOptions,
  type PrometheusMetric,
  prometheusAnalysis,
  prometheusDefaults,
} from './prometheus/index.js';
export { type CodegraphSloOptions, codegraphSlo, codegraphSloDefaults } from './prometheus/slo.js';
export { type ProxyAnalysisOptions, proxyAnalysis, proxyAnalysisDefaults } from './proxy.js';
export type { LatencySummary } from './utils/stats.js';
export { type WebMetricOptions, webMetric, webMetricDefaults } from './web.js';
