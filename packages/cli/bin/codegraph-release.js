#!/usr/bin/env node
// The installed command. It is a committed file (not the build output) so npm links it on install even
// before the package is built; it runs the built CLI.
import('../dist/bin.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/bin.js')) {
    process.stderr.write('codegraph-release is not built yet: run `npm run build` in the repository first\n');
    process.exit(1);
  }
  throw err;
});
