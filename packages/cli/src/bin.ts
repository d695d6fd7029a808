#!/usr/bin/env node
// Loaded at run time (not bundled) so that a broken installation, e.g. a missing peer dependency, is a
// one-line error with a documented exit code instead of a stack trace with exit 1 ("rolled back").
const entry = new URL('./index.js', import.meta.url).href;

import(entry)
  .then((cli: { runCli(argv: readonly string[]): Promise<number> }) => cli.runCli(process.argv.slice(2)))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const e = err as { code?: unknown; message?: unknown };
      const message = String(e?.message ?? err).split('\n')[0];
      if (e?.code === 'ERR_MODULE_NOT_FOUND') {
        process.stderr.write(
          `codegraph-release: CG_CONFIG_INVALID: the CLI cannot load a module (${message}); install @codegraph/release-cli with its peer @codegraph/release-core\n`,
        );
        process.exitCode = 2;
      } else {
        process.stderr.write(`codegraph-release: CG_ERROR: ${message}\n`);
        process.exitCode = 5;
      }
    },
  );
