import { afterEach, describe, expect, it } from 'vitest';
import { ReleaseError } from '../errors.js';
import { rules } from '../rules.js';
import type { PoolState, Target, Weights } from '../target/types.js';

/** What {@link testTarget} needs for one test: a target over fresh, empty state. */
export interface TargetFixture {
  /** The target under test; it starts with no pools. */
  target: Target;
  /**
   * Maps the suite's version labels (`'v1'`, `'v2'`) to versions the target can really run; two labels
   * must map to two different runnable versions.
   */
  version(label: 'v1' | 'v2'): string;
  /** Stops whatever the fixture started (replicas, proxies, temp dirs). Runs even when a test fails. */
  cleanup?(): Promise<void>;
}

/** Options of {@link testTarget}. */
export interface TargetSuiteOptions {
  /** Shown in the describe block. @default 'Target' */
  name?: string;
  /** Makes a fresh fixture; called once per test. */
  create(): TargetFixture | Promise<TargetFixture>;
  /** Replicas per pool the suite provisions. @default 1 */
  replicas?: number;
  /** Time limit of each test, in milliseconds. @default 60000 */
  timeoutMs?: number;
  /**
   * The optional capabilities the target claims; the suite checks each one claimed and fails when the
   * method is missing. @default { route: true, traffic: false }
   */
  capabilities?: { route?: boolean; traffic?: boolean };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ReleaseError) return err.code;
    throw err;
  }
  throw new Error('expected the call to fail with a ReleaseError');
}

const byName = (pools: PoolState[]) => Object.fromEntries(pools.map((p) => [p.name, p]));

/**
 * The conformance suite every {@link Target} passes: provision is idempotent and refuses to change a
 * pool's version, route validates weights and changes nothing on bad input, retire refuses a pool that
 * still has weight and ignores a missing one, and describe agrees with what was done. Route and traffic
 * are checked when the target has them (they are optional capabilities).
 *
 * @example
 * ```ts
 * import { testTarget } from '@codegraph/release-core/testing'
 *
 * testTarget({
 *   name: 'nginx target',
 *   async create() {
 *     const lb = await startNginx()
 *     return { target: nginxTarget({ config: lb.config }), version: (v) => `registry/app:${v}`, cleanup: lb.stop }
 *   },
 * })
 * ```
 */
export function testTarget(options: TargetSuiteOptions): void {
  const replicas = options.replicas ?? 1;
  const timeout = options.timeoutMs ?? 60_000;
  const canRoute = options.capabilities?.route ?? true;
  const hasTraffic = options.capabilities?.traffic ?? false;
  const route = (target: Target) => {
    expect(typeof target.route, 'the target claims the route capability').toBe('function');
    return target.route!.bind(target);
  };
  const fixtures: TargetFixture[] = [];
  const fresh = async (): Promise<TargetFixture> => {
    const fixture = await options.create();
    fixtures.push(fixture);
    return fixture;
  };

  describe(`${options.name ?? 'Target'} conformance`, () => {
    afterEach(async () => {
      for (const f of fixtures.splice(0)) {
        await f.target.close?.();
        await f.cleanup?.();
      }
    });

    it('describes no pools before anything is provisioned', { timeout }, async () => {
      const { target } = await fresh();
      expect(typeof target.name).toBe('string');
      expect((await target.describe()).pools).toEqual([]);
    });

    it('provisions a pool, reports it ready, and does nothing more when asked again', {
      timeout,
    }, async () => {
      const { target, version } = await fresh();
      const v1 = version('v1');
      const first = await target.provision({ pool: 'stable', version: v1, replicas });
      expect(first).toMatchObject({ name: 'stable', version: v1, replicas, ready: replicas });
      expect(first.endpoints).toHaveLength(replicas);
      const again = await target.provision({ pool: 'stable', version: v1, replicas });
      expect(again.endpoints).toEqual(first.endpoints);
      const pools = (await target.describe()).pools;
      expect(pools).toHaveLength(1);
      expect(pools[0]).toMatchObject({ name: 'stable', version: v1, replicas, ready: replicas });
      expect([...(pools[0]?.endpoints ?? [])].sort()).toEqual([...first.endpoints].sort());
    });

    it('refuses to run another version in an existing pool, with CG_CONFIG_INVALID', {
      timeout,
    }, async () => {
      const { target, version } = await fresh();
      await target.provision({ pool: 'stable', version: version('v1'), replicas });
      expect(await codeOf(target.provision({ pool: 'stable', version: version('v2'), replicas }))).toBe(
        'CG_CONFIG_INVALID',
      );
      expect((await target.describe()).pools[0]).toMatchObject({ version: version('v1'), ready: replicas });
    });

    it('rejects a malformed provision request with CG_CONFIG_INVALID', { timeout }, async () => {
      const { target, version } = await fresh();
      for (const bad of [-1, 1.5, Number.NaN]) {
        expect(await codeOf(target.provision({ pool: 'p', version: version('v1'), replicas: bad }))).toBe(
          'CG_CONFIG_INVALID',
        );
      }
      expect(await codeOf(target.provision({ pool: 'p', version: '', replicas }))).toBe('CG_CONFIG_INVALID');
      expect((await target.describe()).pools).toEqual([]);
    });

    it('refuses hostile pool names, versions and replica counts with CG_CONFIG_INVALID before any side effect', {
      timeout,
    }, async () => {
      const { target, version } = await fresh();
      const v1 = version('v1');
      const badVersions = [
        '../../etc',
        'v1\nuser root;',
        'v1;rm -rf /',
        'v1 }',
        '$(id)',
        '/abs/path',
        'x'.repeat(rules.versionMaxLength + 1),
      ];
      for (const bad of badVersions) {
        expect(
          await codeOf(target.provision({ pool: 'p', version: bad, replicas })),
          JSON.stringify(bad),
        ).toBe('CG_CONFIG_INVALID');
      }
      const badPools = [
        '../etc',
        'a/b',
        'a b',
        'a;b',
        'p}',
        '$host',
        'p\nq',
        '',
        'x'.repeat(rules.poolNameMaxLength + 1),
      ];
      for (const bad of badPools) {
        expect(
          await codeOf(target.provision({ pool: bad, version: v1, replicas })),
          JSON.stringify(bad),
        ).toBe('CG_CONFIG_INVALID');
        expect(await codeOf(target.retire(bad)), JSON.stringify(bad)).toBe('CG_CONFIG_INVALID');
        if (canRoute)
          expect(await codeOf(route(target)({ [bad]: 100 })), JSON.stringify(bad)).toBe('CG_CONFIG_INVALID');
      }
      for (const bad of [rules.replicasMax + 1, Number.POSITIVE_INFINITY, '2' as unknown as number]) {
        expect(await codeOf(target.provision({ pool: 'p', version: v1, replicas: bad })), String(bad)).toBe(
          'CG_CONFIG_INVALID',
        );
      }
      expect((await target.describe()).pools).toEqual([]);
    });

    if (canRoute) {
      it('a pool with weight cannot be retired; once its weight is routed away (or to maintenance) it can', {
        timeout,
      }, async () => {
        const { target, version } = await fresh();
        await target.provision({ pool: 'blue', version: version('v1'), replicas });
        await target.provision({ pool: 'green', version: version('v2'), replicas });
        await route(target)({ blue: 50, green: 50 });
        expect(await codeOf(target.retire('blue'))).toBe('CG_TARGET_FAILED');
        expect(await codeOf(target.provision({ pool: 'blue', version: version('v1'), replicas: 0 }))).toBe(
          'CG_TARGET_FAILED',
        );
        expect(byName((await target.describe()).pools).blue).toMatchObject({ ready: replicas, weight: 50 });
        await route(target)({ green: 100 });
        await target.retire('blue');
        expect((await target.describe()).pools.map((p) => p.name)).toEqual(['green']);
        await route(target)({});
        await target.retire('green');
        expect((await target.describe()).pools).toEqual([]);
      });
    }

    if (canRoute) {
      it('routes by weight, gives unnamed pools 0, and describe reports the weights', {
        timeout,
      }, async () => {
        const { target, version } = await fresh();
        await target.provision({ pool: 'stable', version: version('v1'), replicas });
        await target.provision({ pool: 'canary', version: version('v2'), replicas });
        await route(target)({ stable: 80, canary: 20 });
        let pools = byName((await target.describe()).pools);
        expect([pools.stable?.weight, pools.canary?.weight]).toEqual([80, 20]);
        await route(target)({ canary: 100 });
        await route(target)({ canary: 100 });
        pools = byName((await target.describe()).pools);
        expect([pools.stable?.weight, pools.canary?.weight]).toEqual([0, 100]);
      });
    }

    if (canRoute) {
      it('rejects bad weights with a typed error and changes nothing', { timeout }, async () => {
        const { target, version } = await fresh();
        await target.provision({ pool: 'stable', version: version('v1'), replicas });
        await route(target)({ stable: 100 });
        for (const weights of [
          { stable: 90 },
          { stable: 50.5, other: 49.5 },
          { stable: 120, x: -20 },
          { stable: 50, ghost: 50 },
          { stable: 0 },
        ] as Weights[]) {
          expect(await codeOf(route(target)(weights)), JSON.stringify(weights)).toMatch(
            /^CG_(CONFIG_INVALID|TARGET_FAILED)$/,
          );
        }
        expect((await target.describe()).pools.map((p) => [p.name, p.weight])).toEqual([['stable', 100]]);
      });
    }

    if (canRoute) {
      it('drains all traffic with {} (maintenance), then lets every pool scale to 0 and come back', {
        timeout,
      }, async () => {
        const { target, version } = await fresh();
        await target.provision({ pool: 'stable', version: version('v1'), replicas });
        await route(target)({ stable: 100 });
        await route(target)({});
        expect(byName((await target.describe()).pools).stable).toMatchObject({ weight: 0 });
        await target.provision({ pool: 'stable', version: version('v1'), replicas: 0 });
        expect(byName((await target.describe()).pools).stable).toMatchObject({ replicas: 0, weight: 0 });
        await target.provision({ pool: 'stable', version: version('v1'), replicas });
        await route(target)({ stable: 100 });
        expect(byName((await target.describe()).pools).stable).toMatchObject({
          ready: replicas,
          weight: 100,
        });
      });
    }

    it('refuses to retire a pool that still has weight, and retiring a missing pool is a no-op', {
      timeout,
    }, async () => {
      const { target, version } = await fresh();
      await target.provision({ pool: 'old', version: version('v1'), replicas });
      await target.retire('never-provisioned');
      if (canRoute) {
        await target.provision({ pool: 'new', version: version('v2'), replicas });
        await route(target)({ old: 100 });
        expect(await codeOf(target.retire('old'))).toBe('CG_TARGET_FAILED');
        expect(byName((await target.describe()).pools).old).toMatchObject({ ready: replicas, weight: 100 });
        await route(target)({ new: 100 });
      }
      await target.retire('old');
      await target.retire('old');
      expect((await target.describe()).pools.map((p) => p.name)).not.toContain('old');
    });

    it('describes a consistent state: ready endpoints, weights that sum to 100 or 0', {
      timeout,
    }, async () => {
      const { target, version } = await fresh();
      await target.provision({ pool: 'a', version: version('v1'), replicas });
      await target.provision({ pool: 'b', version: version('v2'), replicas });
      if (canRoute) await route(target)({ a: 30, b: 70 });
      const state = await target.describe();
      for (const pool of state.pools) {
        expect(pool.ready).toBeLessThanOrEqual(pool.replicas);
        expect(pool.endpoints).toHaveLength(pool.ready);
        for (const endpoint of pool.endpoints) expect(() => new URL(endpoint)).not.toThrow();
      }
      const sum = state.pools.reduce((n, p) => n + p.weight, 0);
      expect(sum === 100 || sum === 0).toBe(true);
      expect(await target.describe()).toEqual(state);
    });

    if (hasTraffic) {
      it('reports per-pool traffic figures', { timeout }, async () => {
        const { target, version } = await fresh();
        expect(typeof target.traffic, 'the target claims the traffic capability').toBe('function');
        await target.provision({ pool: 'a', version: version('v1'), replicas });
        const figures = await target.traffic!('a');
        expect(figures).toMatchObject({ pool: 'a' });
        expect(figures.requests).toBeGreaterThanOrEqual(figures.errors);
        expect(Array.isArray(figures.latencyMs)).toBe(true);
        expect(Number.isNaN(Date.parse(figures.since))).toBe(false);
      });
    }
  });
}
