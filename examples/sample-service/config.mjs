// Options of the sample service: a flag wins over its environment variable, which wins over the default.
// Bad values stop the process with exit code 2 before it listens, so a test sees a clear failure.

/** @typedef {{ port: number, host: string, version: string, apiKey: string | undefined,
 *   latencyMs: number, errorRate: number, crashOnStart: boolean, slowStartMs: number,
 *   slowShare: number, slowMs: number,
 *   cacheHitRatio: number, missingHeaders: string[], dataDir: string | undefined,
 *   tlsCert: string | undefined, tlsKey: string | undefined, ldb: string }} Config */

const options = {
  port: { flag: 'port', env: 'PORT', type: 'int', def: 8000 },
  host: { flag: 'host', env: 'HOST', type: 'string', def: '127.0.0.1' },
  version: { flag: 'version', env: 'SERVICE_VERSION', type: 'string', def: 'v0.0.0-dev' },
  apiKey: { flag: 'api-key', env: 'API_KEY', type: 'string', def: undefined },
  latencyMs: { flag: 'latency-ms', env: 'FAULT_LATENCY_MS', type: 'int', def: 0 },
  errorRate: { flag: 'error-rate', env: 'FAULT_ERROR_RATE', type: 'ratio', def: 0 },
  crashOnStart: { flag: 'crash-on-start', env: 'FAULT_CRASH_ON_START', type: 'bool', def: false },
  slowStartMs: { flag: 'slow-start-ms', env: 'FAULT_SLOW_START_MS', type: 'int', def: 0 },
  // A slower tail: this share of requests waits `slowMs` more (e.g. 0.02 and 200: the p99 rises ~200 ms).
  slowShare: { flag: 'slow-share', env: 'FAULT_SLOW_SHARE', type: 'ratio', def: 0 },
  slowMs: { flag: 'slow-ms', env: 'FAULT_SLOW_MS', type: 'int', def: 0 },
  cacheHitRatio: { flag: 'cache-hit-ratio', env: 'FAULT_CACHE_HIT_RATIO', type: 'ratio', def: 0.95 },
  missingHeaders: { flag: 'missing-headers', env: 'FAULT_MISSING_HEADERS', type: 'list', def: [] },
  dataDir: { flag: 'data-dir', env: 'DATA_DIR', type: 'string', def: undefined },
  tlsCert: { flag: 'tls-cert', env: 'TLS_CERT', type: 'string', def: undefined },
  tlsKey: { flag: 'tls-key', env: 'TLS_KEY', type: 'string', def: undefined },
  ldb: { flag: 'ldb', env: 'LDB_BIN', type: 'string', def: 'ldb' },
};

export class UsageError extends Error {}

/** Parses one raw value; throws UsageError naming the flag (never the value: it may be a key). */
export function parseValue(type, raw, name) {
  switch (type) {
    case 'int': {
      const n = Number(raw);
      if (!/^\d+$/.test(String(raw).trim()) || !Number.isSafeInteger(n)) {
        throw new UsageError(`--${name} must be a non-negative integer`);
      }
      return n;
    }
    case 'ratio': {
      const n = Number(raw);
      if (String(raw).trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
        throw new UsageError(`--${name} must be a number between 0 and 1`);
      }
      return n;
    }
    case 'bool': {
      const v = String(raw).trim().toLowerCase();
      if (['', '1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      throw new UsageError(`--${name} must be true or false`);
    }
    case 'list':
      return String(raw)
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean);
    default:
      if (String(raw) === '') throw new UsageError(`--${name} must not be empty`);
      return String(raw);
  }
}

/** @returns {Config} */
export function parseConfig(argv, env) {
  const byFlag = new Map(Object.entries(options).map(([key, o]) => [o.flag, key]));
  const fromFlags = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    if (!m || !byFlag.has(m[1])) throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
    const key = byFlag.get(m[1]);
    let raw = m[2];
    if (raw === undefined) {
      const next = argv[i + 1];
      if (options[key].type === 'bool' && (next === undefined || next.startsWith('--'))) raw = 'true';
      else if (next === undefined) throw new UsageError(`--${m[1]} needs a value`);
      else raw = argv[++i];
    }
    fromFlags[key] = raw;
  }
  const config = {};
  for (const [key, o] of Object.entries(options)) {
    const raw = fromFlags[key] ?? env[o.env];
    config[key] = raw === undefined ? o.def : parseValue(o.type, raw, o.flag);
  }
  if (Boolean(config.tlsCert) !== Boolean(config.tlsKey)) {
    throw new UsageError('--tls-cert and --tls-key go together');
  }
  if (config.port > 65535) throw new UsageError('--port must be at most 65535');
  return /** @type {Config} */ (config);
}

/** The fault fields that POST /admin/faults may change at run time, with their types. */
export const runtimeFaults = {
  latencyMs: 'int',
  errorRate: 'ratio',
  cacheHitRatio: 'ratio',
  missingHeaders: 'list',
};
