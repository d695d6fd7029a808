#!/usr/bin/env node
import { runCli } from './cli/main.js';

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `codegraph-release: CG_ERROR: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exitCode = 5;
  },
);
