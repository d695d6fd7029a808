import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cli, requireBuilt } from './helpers.js';

beforeAll(requireBuilt);

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('hostile control inputs are refused with CG_CONFIG_INVALID (exit 2) before anything is read or changed', () => {
  const cases: Array<[string, string[]]> = [
    ['a version naming a path', ['deploy', '../../etc']],
    ['a version with a newline', ['deploy', 'v1\nuser root;']],
    ['a version with shell syntax', ['plan', 'v1;rm -rf /']],
    ['a version longer than a pool name allows', ['deploy', `v${'1'.repeat(60)}`]],
    [
      'a rollback target naming a path',
      ['rollback', '--to', '../v1', '--confirm', 'CONFIRM', '--reason', 'x'],
    ],
    [
      'a reason that forges a log line',
      ['rollback', '--to', 'v1', '--confirm', 'CONFIRM', '--reason', 'ok\n12:00 info FAKE'],
    ],
    ['an oversized reason', ['abort', '--reason', 'x'.repeat(5000)]],
    ['an environment with config syntax', ['status', '--env', 'prod;drop']],
    ['a run id with an escape sequence', ['abort', 'run-1\u001b[2J']],
  ];
  for (const [what, args] of cases) {
    it(`refuses ${what}`, async () => {
      const cwd = await mkdtemp(join(tmpdir(), 'cg-cli-inputs-'));
      dirs.push(cwd);
      const r = await cli(args, cwd);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^codegraph-release: CG_CONFIG_INVALID: /);
      // Refused for the input itself, not for the missing config file.
      expect(r.stderr).toMatch(/is not valid/);
      // One line, and the hostile text is not echoed raw (no control character reaches the terminal).
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: what must not be printed
      expect(r.stderr).not.toMatch(/\u001b/);
      expect(await readdir(cwd)).toEqual([]);
    });
  }
});
