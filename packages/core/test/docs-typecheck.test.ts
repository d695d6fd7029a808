import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../../../scripts/check-docs.mjs', import.meta.url));

describe('documentation', () => {
  it('every TypeScript block in docs/*.md and the READMEs type-checks against the current API', {
    timeout: 120_000,
  }, async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [script], { encoding: 'utf8' }).catch(
      (err: { stdout?: string; stderr?: string }) => {
        throw new Error(`${err.stderr ?? ''}${err.stdout ?? ''}`);
      },
    );
    expect(stdout).toMatch(/check-docs: \d+ TypeScript blocks in \d+ documents type-check/);
  });
});
