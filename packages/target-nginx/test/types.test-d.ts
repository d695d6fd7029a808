import type { PoolTraffic, Target } from '@codegraph/release-core';
import {
  type NginxTarget,
  type NginxTargetOptions,
  nginxTarget,
  nginxTargetDefaults,
} from '@codegraph/target-nginx';
import { expectTypeOf, test } from 'vitest';

// Checked by `tsc` (and `vitest --typecheck`): the public types say what the runtime checks.

const command: NonNullable<NginxTargetOptions['command']> = ({ version, port }) => ({
  command: '/opt/codegraph/bin/api',
  args: ['--port', String(port), '--version', version],
});

test('nginxTarget makes a Target with route and traffic from typed options', () => {
  const target = nginxTarget({ stateDir: '/tmp/x', command });
  expectTypeOf(target).toMatchTypeOf<Target>();
  expectTypeOf(target).toEqualTypeOf<NginxTarget>();
  expectTypeOf(target.traffic).returns.resolves.toEqualTypeOf<PoolTraffic>();
  expectTypeOf(target.endpoint).returns.resolves.toEqualTypeOf<string>();
  expectTypeOf(nginxTargetDefaults.binary).toEqualTypeOf<'/usr/sbin/nginx'>();
  nginxTarget({ stateDir: '/tmp/x', backend: target, nginx: { listenPort: 8080, workerProcesses: 'auto' } });
  // @ts-expect-error a port is a number
  nginxTarget({ stateDir: '/tmp/x', command, nginx: { listenPort: '8080' } });
  // @ts-expect-error raw directives are a list of strings
  nginxTarget({ stateDir: '/tmp/x', command, nginx: { serverDirectives: 'gzip on;' } });
  // @ts-expect-error stateDir is required
  nginxTarget({ command });
});
