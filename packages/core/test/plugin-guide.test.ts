// The plugin guide's examples, run through their conformance suites: what a user copies from
// docs/plugins.md passes testTarget, testStrategy, testVerifier and testNotifier.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tsBlocks } from '../../../scripts/doc-blocks.mjs';

const guide = fileURLToPath(new URL('../../../docs/plugins.md', import.meta.url));
const blocks = tsBlocks(guide).filter((b) => b.name);
const dir = mkdtempSync(join(tmpdir(), 'cg-plugin-guide-'));
mkdirSync(dir, { recursive: true });
for (const b of blocks) writeFileSync(join(dir, b.name!), b.code);

describe('the plugin guide', () => {
  it('has a complete target, strategy, verifier and notifier, each with its conformance test', () => {
    expect(blocks.map((b) => b.name).sort()).toEqual(
      expect.arrayContaining([
        'my-lb.ts',
        'my-lb.test.ts',
        'all-at-once.ts',
        'all-at-once.test.ts',
        'cache-hit-ratio.ts',
        'cache-hit-ratio.test.ts',
        'chat.ts',
        'chat.test.ts',
      ]),
    );
  });
});

// Importing each extracted test registers its suite here, as if the user had run it.
for (const b of blocks.filter((x) => x.name!.endsWith('.test.ts'))) await import(join(dir, b.name!));
