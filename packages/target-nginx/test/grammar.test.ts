import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigInvalidError, type PoolState, ReleaseError, type Target } from '@codegraph/release-core';
import { modelTarget } from '@codegraph/release-core/testing';
import { nginxTarget } from '@codegraph/target-nginx';
import { afterEach, describe, expect, it } from 'vitest';
import { renderConfig } from '../src/config.js';
import { addressOf, checkAddress } from '../src/grammar.js';
import { resolveOptions } from '../src/options.js';
import { requireNginx, sampleCommand } from './helpers.js';

const dirs: string[] = [];
const dir = async () => {
  const d = await mkdtemp(path.join(tmpdir(), 'cg-nginx-grammar-'));
  dirs.push(d);
  return d;
};
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const refusal = async (p: Promise<unknown> | (() => unknown)): Promise<string> => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (err instanceof ReleaseError) return err.code;
    throw err;
  }
  throw new Error('expected a refusal');
};

/** A backend that reports whatever endpoints it is given: another plugin nginx must not trust. */
function hostileBackend(endpoints: string[]): Target {
  const model = modelTarget();
  return {
    ...model,
    name: 'hostile',
    async describe() {
      const state = await model.describe();
      return { pools: state.pools.map((p): PoolState => ({ ...p, endpoints, ready: endpoints.length })) };
    },
  };
}

describe('nothing reaches nginx.conf without passing a strict grammar', () => {
  it('a target name with a newline or config syntax is refused before anything is written', async () => {
    const stateDir = await dir();
    for (const name of ['nginx\nuser root;', 'a;b', 'x}', 'with space', '', 'x'.repeat(64)]) {
      expect(() => nginxTarget({ stateDir, command: sampleCommand(), name }), JSON.stringify(name)).toThrow(
        ConfigInvalidError,
      );
    }
    expect(await readdir(stateDir)).toEqual([]);
  });

  it('server directives are single simple directives: no blocks, no second directive, no newline', async () => {
    const stateDir = await dir();
    const ok = ['client_max_body_size 10m;', 'add_header X-Frame-Options "DENY" always;', 'gzip on;'];
    expect(
      resolveOptions({ stateDir, command: sampleCommand(), nginx: { serverDirectives: ok } })
        .serverDirectives,
    ).toEqual(ok);
    for (const bad of [
      'gzip on; user root;',
      'location / { return 200; }',
      'gzip on;\nuser root;',
      'gzip on; # comment',
      'add_header X "a\\"b";',
      'gzip on',
      '}',
    ]) {
      expect(
        () => nginxTarget({ stateDir, command: sampleCommand(), nginx: { serverDirectives: [bad] } }),
        JSON.stringify(bad),
      ).toThrow(ConfigInvalidError);
    }
  });

  it('paths with quotes, "$", braces or control characters are refused', async () => {
    const base = await dir();
    for (const bad of ['a"b', 'a$b', 'a{b', 'a\u0001b', "a'b", 'a;b', 'a\\b']) {
      expect(
        () => nginxTarget({ stateDir: path.join(base, bad), command: sampleCommand() }),
        JSON.stringify(bad),
      ).toThrow(ConfigInvalidError);
    }
    expect(await readdir(base)).toEqual([]);
  });

  it('upstream addresses are host:port with a plain IPv4, [IPv6] or DNS host', () => {
    for (const ok of ['127.0.0.1:8080', '[::1]:80', 'api-1.internal:443', 'localhost:1'])
      expect(checkAddress(ok)).toBe(ok);
    for (const bad of [
      '127.0.0.1',
      '127.0.0.1:0',
      '127.0.0.1:70000',
      '300.1.1.1:80',
      'a;b:80',
      'a}:80',
      '-a:80',
      'a b:1',
    ])
      expect(() => checkAddress(bad), bad).toThrow(ConfigInvalidError);
    for (const bad of [
      'https://127.0.0.1:1',
      'http://u:p@127.0.0.1:1',
      'http://127.0.0.1:1/x',
      'http://127.0.0.1',
      'http://h:1/?a=;',
    ])
      expect(() => addressOf(bad), bad).toThrow(ConfigInvalidError);
  });

  it('a backend reporting hostile endpoints cannot inject config: the change is refused and never written', async () => {
    requireNginx();
    for (const endpoint of [
      'http://127.0.0.1:1/;}',
      'http://a;b:80',
      'http://127.0.0.1:1\nuser root;',
      'file:///etc/passwd',
    ]) {
      const stateDir = await dir();
      const target = nginxTarget({ stateDir, backend: hostileBackend([endpoint]) });
      try {
        // With weight 0 the pool's endpoints stay out of the upstream; routing to it is what must be refused.
        await target.provision({ pool: 'stable', version: 'v1', replicas: 1 });
        expect(await refusal(target.route({ stable: 100 })), endpoint).toBe('CG_CONFIG_INVALID');
        const config = await readFile(path.join(stateDir, 'nginx', 'nginx.conf'), 'utf8');
        expect(config).not.toContain('upstream codegraph_pools');
        expect(config).not.toContain('user root');
      } finally {
        await target.destroy();
      }
    }
  });

  it('the rendered config refuses a pool name or generation that is not in the grammar', async () => {
    const opts = resolveOptions({ stateDir: await dir(), command: sampleCommand() });
    const pool = { name: 'stable', version: 'v1', weight: 100, endpoints: ['http://127.0.0.1:4000'] };
    expect(renderConfig(opts, 8080, [pool], 'g1')).toContain('server 127.0.0.1:4000 weight=1');
    expect(await refusal(() => renderConfig(opts, 8080, [{ ...pool, name: 'a;b' }], 'g1'))).toBe(
      'CG_CONFIG_INVALID',
    );
    expect(() => renderConfig(opts, 8080, [pool], 'g1\nuser root;')).toThrow();
  });
});
