export { blueGreen } from './bluegreen.js';
export { type BlueGreenOptions, blueGreenDefaults, type PromotionAnalysis } from './options.js';
