// @codegraph/strategy-canary: a traffic-weighted canary with analysis gates, a statistical judge and exposure math.
export { type CanaryStrategy, canary } from './canary.js';
export {
  type CanaryExposure,
  canaryExposure,
  type ExposureAssumptions,
  type ExposureStage,
  type PlannedRelease,
} from './exposure.js';
export { type CanaryJudgeOptions, canaryJudge, canaryJudgeDefaults } from './judge.js';
export {
  type AnalysisStep,
  type CanaryOptions,
  type CanaryStep,
  canaryDefaults,
  type PauseStep,
  type SetCanaryScaleStep,
  type SetWeightStep,
} from './options.js';
