import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigInvalidError } from '@codegraph/release-core';
import { describe, expect, it } from 'vitest';
import { parseLine } from '../src/access-log.js';
import { configBody, renderConfig, upstreamServers } from '../src/config.js';
import { nginxFiles, testConfig } from '../src/nginx.js';
import { resolveOptions } from '../src/options.js';
import { nginxBinary, requireNginx } from './helpers.js';

const pool = (name: string, weight: number, replicas: number, base = 40_000) => ({
  name,
  version: `v-${name}`,
  weight,
  endpoints: Array.from({ length: replicas }, (_, i) => `http://127.0.0.1:${base + i}`),
});

/** Total server weight per pool. */
const totals = (servers: ReturnType<typeof upstreamServers>) => {
  const by: Record<string, number> = {};
  for (const s of servers) by[s.pool] = (by[s.pool] ?? 0) + s.weight;
  return by;
};

describe('how weights map to nginx server weights', () => {
  it('gives each pool exactly its share, whatever its replica count', () => {
    for (const [a, b, ra, rb] of [
      [90, 10, 2, 1],
      [33, 67, 3, 2],
      [1, 99, 4, 7],
      [50, 50, 5, 3],
    ] as const) {
      const servers = upstreamServers([pool('stable', a, ra, 40_000), pool('canary', b, rb, 50_000)]);
      expect(servers).toHaveLength(ra + rb);
      expect(servers.every((s) => Number.isInteger(s.weight) && s.weight >= 1)).toBe(true);
      // Exact, in integers: stable's total / canary's total === a / b.
      const t = totals(servers);
      expect(t.stable! * b).toBe(t.canary! * a);
    }
  });

  it('reduces server weights to the smallest integers (90/10 over 2+1 replicas is 9, 9, 2)', () => {
    const servers = upstreamServers([pool('stable', 90, 2, 40_000), pool('canary', 10, 1, 50_000)]);
    expect(servers.map((s) => [s.pool, s.weight])).toEqual([
      ['canary', 2],
      ['stable', 9],
      ['stable', 9],
    ]);
  });

  it('leaves out pools at weight 0 and pools without a ready replica (nginx has no weight 0)', () => {
    expect(upstreamServers([pool('stable', 100, 2), pool('green', 0, 2, 50_000)]).map((s) => s.pool)).toEqual(
      ['stable', 'stable'],
    );
    expect(upstreamServers([pool('stable', 100, 0)])).toEqual([]);
  });
});

describe('the rendered config', () => {
  const opts = resolveOptions({ stateDir: '/tmp/cg-render', command: () => ({ command: 'x' }) });

  it('keeps every path nginx writes inside the state directory', () => {
    const config = renderConfig(opts, 8080, [pool('stable', 100, 1)], 'gen-1');
    const paths = [...config.matchAll(/"(\/[^"]+)"/g)].map((m) => m[1]!);
    expect(paths).toHaveLength(8);
    for (const p of paths) expect(p).toMatch(/^\/tmp\/cg-render\/nginx\//);
    expect(config).toContain('listen 127.0.0.1:8080;');
  });

  it('passes nginx -t from a state directory with a space in its path', async () => {
    requireNginx();
    const dir = await mkdtemp(path.join(tmpdir(), 'cg nginx render '));
    try {
      const o = resolveOptions({ stateDir: dir, command: () => ({ command: 'x' }) });
      const files = nginxFiles(nginxBinary, o.nginxDir);
      await mkdir(path.join(o.nginxDir, 'tmp'), { recursive: true });
      await writeFile(
        files.config,
        renderConfig(o, 8080, [pool('stable', 90, 2), pool('canary', 10, 1, 50_000)], 'g'),
      );
      expect(await testConfig(files, files.config)).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a state directory that would break the config', () => {
    for (const stateDir of ['/tmp/a;b', '/tmp/$host', '/tmp/a"b', '/tmp/{x}', '/tmp/a\nb']) {
      expect(() => resolveOptions({ stateDir, command: () => ({ command: 'x' }) }), stateDir).toThrow(
        ConfigInvalidError,
      );
    }
  });

  it('answers 503 without an upstream when no pool has weight', () => {
    const config = renderConfig(opts, 8080, [pool('stable', 0, 1)], 'gen-1');
    expect(config).not.toMatch(/^\s*upstream /m);
    expect(config).not.toContain('proxy_pass');
    expect(config).toContain('return 503');
  });

  it('tells two renders apart only by what they route, not by their generation', () => {
    const a = renderConfig(opts, 8080, [pool('stable', 100, 1)], 'gen-a');
    expect(configBody(a)).toBe(configBody(renderConfig(opts, 8080, [pool('stable', 100, 1)], 'gen-b')));
    expect(configBody(a)).not.toBe(configBody(renderConfig(opts, 8080, [pool('stable', 100, 2)], 'gen-a')));
  });
});

describe('access log lines', () => {
  it('reads pool, status and request time; a retried request counts for the pool that answered', () => {
    expect(
      parseLine('1795633290.637\tcanary\t127.0.0.1:1, 127.0.0.1:2\t200\t502, 200\t0.001\t0.004\t77'),
    ).toEqual({
      time: 1795633290.637,
      pool: 'canary',
      status: 200,
      requestMs: 4,
    });
    expect(parseLine('garbage')).toBeUndefined();
  });
});
