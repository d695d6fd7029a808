import path from 'node:path';
import { checkPoolName } from '@codegraph/release-core/kit';
import { addressOf, checkTargetName } from './grammar.js';
import type { ResolvedOptions } from './options.js';

export { addressOf };

/** A pool as the config sees it: its version, its weight in percent and its ready endpoints. */
export interface RoutedPool {
  name: string;
  version: string;
  weight: number;
  /** Base URLs such as `http://127.0.0.1:41234`. */
  endpoints: string[];
}

/** One `server` line of the upstream. */
export interface UpstreamServer {
  pool: string;
  /** `host:port`. */
  address: string;
  weight: number;
}

/** The path answering the config generation, so a reload can be confirmed. Loopback only, not logged. */
export const generationPath = '/.codegraph/generation';

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number): number => (a / gcd(a, b)) * b;

/**
 * Splits each pool's share across its replicas so every pool gets exactly its weight: with L the lcm of
 * the replica counts, a replica of a pool with weight W and n replicas gets W * L / n; all weights are
 * then divided by their gcd. Pools with weight 0 or no endpoint are left out (nginx has no weight 0).
 */
export function upstreamServers(pools: RoutedPool[]): UpstreamServer[] {
  // Pool names and endpoints come from the backend, another plugin: checked again before they become config.
  for (const p of pools) checkPoolName(p.name, 'nginxTarget: pool name', { plugin: 'nginx' });
  const routed = pools
    .filter((p) => p.weight > 0 && p.endpoints.length > 0)
    .sort((a, b) => a.name.localeCompare(b.name));
  if (routed.length === 0) return [];
  const l = routed.reduce((acc, p) => lcm(acc, p.endpoints.length), 1);
  const servers = routed.flatMap((p) =>
    p.endpoints.map((e) => ({
      pool: p.name,
      address: addressOf(e),
      weight: (p.weight * l) / p.endpoints.length,
    })),
  );
  const g = servers.reduce((acc, s) => gcd(acc, s.weight), 0);
  return servers.map((s) => ({ ...s, weight: s.weight / g }));
}

const esc = (s: string) => s.replace(/[.]/g, '\\.');

/** Renders the whole nginx configuration for the given pools. Everything nginx writes stays in `opts.nginxDir`. */
export function renderConfig(
  opts: ResolvedOptions,
  port: number,
  pools: RoutedPool[],
  generation: string,
): string {
  const dir = opts.nginxDir;
  checkTargetName(opts.name);
  if (!/^[a-z0-9-]{1,64}$/.test(generation)) throw new Error(`bad generation ${JSON.stringify(generation)}`);
  // Quoted: a state directory may hold spaces (options refuse quotes, `$`, `;` and braces).
  const p = (f: string) => `"${path.join(dir, f)}"`;
  const servers = upstreamServers(pools);
  const lines: string[] = [
    `# Written by @codegraph/target-nginx (${opts.name}); changes are overwritten on the next route.`,
    `# generation ${generation}`,
    ...(opts.user ? [`user ${opts.user};`] : []),
    `worker_processes ${opts.workerProcesses};`,
    `pid ${p('nginx.pid')};`,
    `error_log ${p('error.log')} notice;`,
    `worker_shutdown_timeout ${Math.max(1, Math.ceil(opts.drainTimeoutMs / 1000))}s;`,
    'events { worker_connections 1024; }',
    '',
    'http {',
    `  client_body_temp_path ${p('tmp/client_body')};`,
    `  proxy_temp_path ${p('tmp/proxy')};`,
    `  fastcgi_temp_path ${p('tmp/fastcgi')};`,
    `  uwsgi_temp_path ${p('tmp/uwsgi')};`,
    `  scgi_temp_path ${p('tmp/scgi')};`,
    '  # Keep bodies in memory: workers may run as another user (nobody, under root) that cannot write here.',
    '  client_body_buffer_size 1m;',
    '  proxy_max_temp_file_size 0;',
    '  server_tokens off;',
    '  default_type application/octet-stream;',
    '',
    '  # Which pool answered: the last address nginx tried (a retried request lists every one).',
    '  map $upstream_addr $codegraph_pool {',
    '    default "";',
    ...servers.map((s) => `    "~(^|, )${esc(s.address)}$" "${s.pool}";`),
    '  }',
    `  log_format codegraph '$msec\\t$codegraph_pool\\t$upstream_addr\\t$status\\t$upstream_status\\t$upstream_response_time\\t$request_time\\t$pid\\t$connection\\t$connection_requests';`,
    `  access_log ${p('access.log')} codegraph;`,
    '',
  ];
  if (servers.length > 0) {
    lines.push(
      '  upstream codegraph_pools {',
      ...servers.map(
        (s) => `    server ${s.address} weight=${s.weight} max_fails=1 fail_timeout=2s; # ${s.pool}`,
      ),
      `    keepalive ${opts.keepalive};`,
      '  }',
      '',
    );
  }
  lines.push(
    '  server {',
    `    listen ${opts.host}:${port};`,
    `    keepalive_timeout ${opts.clientKeepaliveS};`,
    ...opts.serverDirectives.map((d) => `    ${d}`),
    `    location = ${generationPath} {`,
    '      access_log off;',
    '      allow 127.0.0.0/8;',
    ...(opts.host.startsWith('127.') ? [] : [`      allow ${opts.host};`]),
    '      deny all;',
    `      return 200 "${generation}";`,
    '    }',
    '    location / {',
  );
  if (servers.length > 0) {
    lines.push(
      '      proxy_pass http://codegraph_pools;',
      '      proxy_http_version 1.1;',
      '      proxy_set_header Connection "";',
      '      proxy_set_header Host $http_host;',
      '      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
      '      # A replica going away drops no idempotent request: nginx tries the next server.',
      '      proxy_next_upstream error timeout http_502;',
      '      proxy_connect_timeout 2s;',
      '      add_header x-codegraph-pool $codegraph_pool always;',
    );
  } else {
    lines.push(
      '      default_type application/json;',
      `      return 503 '{"error":"no ready pool has weight"}';`,
    );
  }
  lines.push('    }', '  }', '}', '');
  return lines.join('\n');
}

/** The generation a rendered config carries. */
export const generationIn = (config: string): string | undefined => /^# generation (\S+)$/m.exec(config)?.[1];

/** The config without its generation, to tell whether a render changes anything. */
export function configBody(config: string): string {
  const generation = generationIn(config);
  return generation ? config.replaceAll(generation, '') : config;
}
