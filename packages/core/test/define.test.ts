import { describe, expect, it } from 'vitest';
import {
  defineBackupProvider,
  defineNotifier,
  defineStore,
  defineStrategy,
  defineTarget,
  defineVerifier,
  restoreVersion,
} from '../src/index.js';

describe('define helpers', () => {
  it('accept a well-formed plugin and return it unchanged', () => {
    const target = {
      name: 't',
      describe: async () => ({ pools: [] }),
      provision: async () => {
        throw new Error('x');
      },
      retire: async () => {},
    };
    expect(defineTarget(target)).toBe(target);
    const strategy = { name: 's', *deploy() {}, undo: restoreVersion, requires: ['route'] as const };
    expect(defineStrategy(strategy)).toBe(strategy);
  });

  it('name the plugin and the missing method when an in-house plugin is incomplete', () => {
    expect(() => defineTarget({ name: 'lb', describe: async () => ({ pools: [] }) } as never)).toThrowError(
      /target "lb" must implement provision, retire/,
    );
    expect(() => defineVerifier({ name: 'v' } as never)).toThrowError(
      expect.objectContaining({ code: 'CG_CONFIG_INVALID', plugin: 'v' }),
    );
    expect(() =>
      defineBackupProvider({
        name: 'b',
        create: async () => ({}),
        list: async () => [],
        verify: async () => ({}),
        restore: async () => ({}),
        prune: 'yes',
      } as never),
    ).toThrowError(/prune must be functions/);
    expect(() =>
      defineNotifier({ name: 'n', notify: async () => {}, events: 'run.finished' } as never),
    ).toThrowError(/events must be an array/);
    expect(() => defineStore({ name: '' } as never)).toThrowError(/needs a non-empty name/);
    expect(() =>
      defineStrategy({ name: 's', *deploy() {}, undo: restoreVersion, requires: ['teleport'] } as never),
    ).toThrowError(/unknown capability "teleport"/);
  });
});
