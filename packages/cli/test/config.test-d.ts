import { fileStore, localTarget, rolling, type Strategy } from '@codegraph/release-core';
import { expectTypeOf } from 'vitest';
import {
  type ConfigContext,
  defineConfig,
  type EnvironmentConfig,
  type ExitCode,
  exitCodes,
  type ReleaseConfig,
  runCli,
} from '../src/index.js';

const target = localTarget({ stateDir: '/tmp/x', command: () => ({ command: 'true' }) });

// defineConfig keeps the literal shape it was given.
const config = defineConfig({
  defaultEnvironment: 'staging',
  environments: { staging: { target, strategy: rolling() } },
});
expectTypeOf(config.defaultEnvironment).toEqualTypeOf<'staging'>();
expectTypeOf(config).toMatchTypeOf<ReleaseConfig>();

// An environment function receives the context and may be async.
defineConfig({
  environments: {
    production: async (ctx) => {
      expectTypeOf(ctx).toEqualTypeOf<ConfigContext>();
      expectTypeOf(ctx.backupProgress).parameter(0).toEqualTypeOf<{ path: string; size: number }>();
      return { target, strategy: rolling(), store: fileStore({ dir: ctx.stateDir }) };
    },
  },
});

// A strategy is required; strategies are named Strategy values.
// @ts-expect-error strategy is missing
defineConfig({ environments: { staging: { target } } });
expectTypeOf<EnvironmentConfig['strategies']>().toEqualTypeOf<Record<string, Strategy> | undefined>();

// The exit codes are literal numbers; runCli resolves to one of them as a number.
expectTypeOf(exitCodes.locked).toEqualTypeOf<3>();
expectTypeOf<ExitCode>().toEqualTypeOf<0 | 1 | 2 | 3 | 4 | 5 | 130>();
expectTypeOf(runCli).returns.resolves.toBeNumber();
