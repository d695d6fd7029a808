// The plugin's own checks, as its CI would run them: type-check, build, load the build as a consumer
// (import and require), then the tests (the SDK's Notifier conformance suite and the plugin's own).
// The SDK's root vitest does not collect this folder, so `test/examples.test.ts` runs this script.
//   node examples/inhouse-plugin/check.mjs
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const bin = (pkg, rel) => join(dirname(require.resolve(`${pkg}/package.json`)), rel);

const steps = [
  ['type-check', [bin('typescript', 'bin/tsc'), '-p', join(here, 'tsconfig.json')]],
  ['build', [bin('tsup', 'dist/cli-default.js')]],
  [
    'load the build with import',
    [
      '--input-type=module',
      '-e',
      "const m = await import('./dist/index.js'); if (typeof m.auditLog !== 'function' || typeof m.verifyAuditLog !== 'function') process.exit(1)",
    ],
  ],
  [
    'load the build with require',
    [
      '-e',
      "const m = require('./dist/index.cjs'); if (typeof m.auditLog !== 'function' || typeof m.verifyAuditLog !== 'function') process.exit(1)",
    ],
  ],
  [
    'test',
    [bin('vitest', 'vitest.mjs'), 'run', '--reporter=verbose', '--config', join(here, 'vitest.config.ts')],
  ],
];

for (const [name, args] of steps) {
  process.stdout.write(`inhouse-plugin: ${name}\n`);
  const run = spawnSync(process.execPath, args, { cwd: here, stdio: 'inherit', timeout: 180_000 });
  if (run.status !== 0) {
    process.stdout.write(
      `inhouse-plugin: ${name} FAILED (${run.error?.message ?? `exit ${run.status ?? run.signal}`})\n`,
    );
    process.exit(1);
  }
}
process.stdout.write('inhouse-plugin: all checks passed\n');
