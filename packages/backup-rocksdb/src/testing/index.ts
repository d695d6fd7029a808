// Conformance suites for the backup repository's plugin points: run the same tests our own stores pass.
export * from './blob-store.js';
