import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Action,
  createReleaseEngine,
  fileStore,
  ReleaseError,
  rolling,
  type Strategy,
} from '../src/index.js';
import { checkAction, checkPoolName, checkVersion, checkWeights, rules } from '../src/kit/index.js';
import { modelTarget } from '../src/testing/index.js';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ReleaseError) return err.code;
    throw err;
  }
  return undefined;
};

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe('one set of rules for the engine and every target', () => {
  it('a version the engine accepts fits every strategy pool name a target accepts', () => {
    const longest = 'v'.repeat(rules.versionMaxLength);
    expect(checkVersion(longest)).toBe(longest);
    for (const prefix of ['canary', 'baseline', 'stable', 'preview', 'blue', 'green'])
      expect(checkPoolName(`${prefix}-${longest}`)).toBe(`${prefix}-${longest}`);
    expect(codeOf(() => checkVersion(`${longest}1`))).toBe('CG_CONFIG_INVALID');
  });

  it('refuses paths, newlines, separators and shell syntax in versions and pool names', () => {
    for (const bad of ['../../etc', 'v1\n', 'v1;', 'v1 2', '$(id)', '`id`', '-v1', '', 'v1/2', 'v1\u2028'])
      expect(
        [codeOf(() => checkVersion(bad)), codeOf(() => checkPoolName(bad))],
        JSON.stringify(bad),
      ).toEqual(['CG_CONFIG_INVALID', 'CG_CONFIG_INVALID']);
  });

  it('weights are whole percentages adding up to 100, or {} for maintenance', () => {
    expect(checkWeights({})).toEqual({});
    expect(checkWeights({ a: 95, b: 5 })).toEqual({ a: 95, b: 5 });
    for (const bad of [
      { a: 90 },
      { a: 50.5, b: 49.5 },
      { a: 120, b: -20 },
      { a: 0 },
      [],
      null,
      { 'a;b': 100 },
    ])
      expect(
        codeOf(() => checkWeights(bad)),
        JSON.stringify(bad),
      ).toBe('CG_CONFIG_INVALID');
  });

  it('checks every kind of action a strategy may yield', () => {
    const good: Action[] = [
      { type: 'provision', pool: 'canary-v2', version: 'v2', replicas: 0 },
      { type: 'route', weights: {} },
      { type: 'analyze', name: 'canary-20', pools: ['canary-v2'] },
      { type: 'pause', durationMs: 1000, reason: 'soak' },
      { type: 'promote', pool: 'canary-v2' },
      { type: 'retire', pool: 'v1' },
    ];
    for (const action of good) expect(checkAction(action)).toBe(action);
    const bad: unknown[] = [
      { type: 'provision', pool: 'p', version: '../etc', replicas: 1 },
      { type: 'provision', pool: 'p', version: 'v1', replicas: rules.replicasMax + 1 },
      { type: 'route', weights: { a: 99 } },
      { type: 'analyze', name: 'x\ny' },
      { type: 'analyze', name: 'x', pools: ['../p'] },
      { type: 'pause', durationMs: -1 },
      { type: 'promote', pool: 'a b' },
      { type: 'retire' },
      { type: 'delete', pool: 'p' },
      'route',
    ];
    for (const action of bad)
      expect(
        codeOf(() => checkAction(action)),
        JSON.stringify(action),
      ).toBe('CG_CONFIG_INVALID');
  });

  it('the engine refuses a strategy action that breaks a rule before the target sees it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cg-rules-'));
    dirs.push(dir);
    const model = modelTarget();
    const seen: unknown[] = [];
    // Records every route call as the target receives it, before the target's own checks.
    const target = {
      ...model,
      name: 'spy',
      route: (w: Record<string, number>) => {
        seen.push(w);
        return model.route(w);
      },
    };
    const broken: Strategy = {
      name: 'broken',
      *deploy({ version }) {
        yield { type: 'provision', pool: version, version, replicas: 1 };
        // 90 + nothing: a strategy bug the target must never receive.
        yield { type: 'route', weights: { [version]: 90 } };
      },
      undo: rolling().undo,
    };
    const engine = createReleaseEngine({
      environment: 'rules',
      target,
      strategy: broken,
      store: fileStore({ dir }),
      metrics: false,
    });
    try {
      // The dry run refuses it too: a plan that passes is a release that passes the rules.
      await expect(engine.plan({ version: 'v1' })).rejects.toMatchObject({ code: 'CG_CONFIG_INVALID' });
      const result = await engine.release({ version: 'v1' });
      expect(result.status).not.toBe('succeeded');
      expect(JSON.stringify(result.error)).toContain('CG_CONFIG_INVALID');
    } finally {
      await engine.close?.();
    }
    expect(seen).toEqual([]);
    expect(model.calls[0]).toEqual({ op: 'provision', request: { pool: 'v1', version: 'v1', replicas: 1 } });
  });

  it('the engine refuses a version longer than any target accepts before anything runs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cg-rules-'));
    dirs.push(dir);
    const target = modelTarget();
    const engine = createReleaseEngine({
      environment: 'rules',
      target,
      strategy: rolling(),
      store: fileStore({ dir }),
      metrics: false,
    });
    await expect(engine.release({ version: 'v'.repeat(rules.versionMaxLength + 1) })).rejects.toMatchObject({
      code: 'CG_CONFIG_INVALID',
    });
    expect(target.calls).toEqual([]);
    await engine.close?.();
  });
});
