// Conformance suites for plugin authors: run the same tests our own plugins pass.
// Each suite lives in its own file and is re-exported here.

export * from './backup.js';
export * from './model-target.js';
export * from './notifier.js';
export * from './store.js';
export * from './strategy.js';
export * from './target.js';
export * from './verifier.js';
