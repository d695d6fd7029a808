import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ConfigInvalidError,
  fileStore,
  httpValidation,
  localTarget,
  type Notifier,
  rolling,
  type Strategy,
  type Verifier,
} from '@codegraph/release-core';
import type { EnvironmentConfig, ReleaseConfig } from './define.js';

type Json = Record<string, unknown>;

const fail = (message: string): never => {
  throw new ConfigInvalidError(`config: ${message}`);
};
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Loads one of our plugin packages, from the config's folder first, then from the CLI's. */
async function importPackage(name: string, dir: string): Promise<Json> {
  for (const base of [resolve(dir, 'release.config.json'), import.meta.url]) {
    try {
      const file = createRequire(base).resolve(name);
      return (await import(pathToFileURL(file).href)) as Json;
    } catch {
      // try the next place
    }
  }
  return fail(`${name} is not installed: npm install ${name}`);
}

/** `"${NAME}"` reads the environment variable NAME (and marks its value secret). */
function substitute(value: unknown, secrets: string[], where: string): unknown {
  if (typeof value === 'string') {
    const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(value);
    if (!m) return value;
    const found = process.env[m[1]!];
    if (found === undefined || found === '') fail(`${where} needs the environment variable ${m[1]}`);
    secrets.push(found!);
    return found;
  }
  if (Array.isArray(value)) return value.map((v, i) => substitute(v, secrets, `${where}[${i}]`));
  if (isObject(value))
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substitute(v, secrets, `${where}.${k}`)]),
    );
  return value;
}

function typed(value: unknown, where: string): { type: string; options: Json } {
  if (!isObject(value) || typeof value.type !== 'string') return fail(`${where} needs a "type"`);
  const { type, ...options } = value;
  return { type: type as string, options };
}

async function strategyOf(value: unknown, where: string, dir: string): Promise<Strategy> {
  const { type, options } = typed(value, where);
  if (type === 'rolling') return rolling(options);
  if (type === 'canary') {
    const mod = await importPackage('@codegraph/strategy-canary', dir);
    return (mod.canary as (o: Json) => Strategy)(options);
  }
  if (type === 'blueGreen') {
    const mod = await importPackage('@codegraph/strategy-bluegreen', dir);
    return (mod.blueGreen as (o: Json) => Strategy)(options);
  }
  return fail(`${where}.type must be rolling, canary or blueGreen, got ${JSON.stringify(type)}`);
}

const fill = (text: string, v: Record<string, string>) =>
  text.replace(/\{(version|port|pool|index|node)\}/g, (_, k: string) => v[k]!);

function targetOf(value: unknown, where: string, dir: string, stateDir: string, env: string) {
  const { type, options } = typed(value, where);
  if (type !== 'local')
    fail(`${where}.type must be "local" in a JSON config (use release.config.ts for others)`);
  const { command, args = [], env: vars = {}, stateDir: own, ...rest } = options;
  if (typeof command !== 'string')
    fail(`${where}.command must be a string, e.g. "{node}" or "/opt/codegraph/{version}/codegraph-api"`);
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) fail(`${where}.args must be strings`);
  return localTarget({
    ...rest,
    stateDir: resolve(dir, typeof own === 'string' ? own : resolve(stateDir, 'local', env)),
    command: ({ version, port, pool, index }) => {
      const v = { version, port: String(port), pool, index: String(index), node: process.execPath };
      return {
        command: fill(command as string, v),
        args: (args as string[]).map((a) => fill(a, v)),
        env: Object.fromEntries(Object.entries(vars as Json).map(([k, x]) => [k, fill(String(x), v)])),
        cwd: dir,
      };
    },
  });
}

async function notifierOf(value: unknown, where: string, dir: string): Promise<Notifier> {
  const { type, options } = typed(value, where);
  const mod = await importPackage('@codegraph/notify', dir);
  const factory = mod[type];
  if (
    typeof factory !== 'function' ||
    type === 'fanOut' ||
    type === 'renderNotice' ||
    type === 'signatureHeader'
  )
    fail(`${where}.type ${JSON.stringify(type)} is not a notifier of @codegraph/notify`);
  return (factory as (o: Json) => Notifier)(options);
}

/**
 * Builds a config from a `release.config.json`: the embedded plugins by `type`, with `{version}`,
 * `{port}`, `{pool}`, `{index}` and `{node}` in a local target's command, and `"${NAME}"` for a
 * value read from the environment (and kept secret).
 */
export async function fromJson(raw: unknown, dir: string): Promise<ReleaseConfig> {
  if (!isObject(raw) || !isObject(raw.environments)) return fail('a JSON config needs "environments"');
  const stateDir = resolve(dir, typeof raw.stateDir === 'string' ? raw.stateDir : '.codegraph-release');
  const environments: Record<string, () => Promise<EnvironmentConfig>> = {};
  for (const [name, body] of Object.entries(raw.environments)) {
    environments[name] = async () => {
      const secrets: string[] = [];
      const at = `environments.${name}`;
      const e = substitute(body, secrets, at);
      if (!isObject(e)) return fail(`${at} must be an object`);
      const {
        target,
        strategy,
        strategies = {},
        verifiers = [],
        notifiers = [],
        store,
        secrets: own = [],
        ...rest
      } = e;
      if (
        !Array.isArray(verifiers) ||
        !Array.isArray(notifiers) ||
        !Array.isArray(own) ||
        !isObject(strategies)
      )
        fail(`${at}: verifiers, notifiers and secrets must be arrays, strategies an object`);
      const named: Record<string, Strategy> = {};
      for (const [k, s] of Object.entries(strategies as Json))
        named[k] = await strategyOf(s, `${at}.strategies.${k}`, dir);
      const checks: Verifier[] = (verifiers as unknown[]).map((v, i) => {
        const { type, options } = typed(v, `${at}.verifiers[${i}]`);
        if (type !== 'httpValidation') fail(`${at}.verifiers[${i}].type must be "httpValidation"`);
        return httpValidation(options);
      });
      const tell: Notifier[] = [];
      for (const [i, n] of (notifiers as unknown[]).entries())
        tell.push(await notifierOf(n, `${at}.notifiers[${i}]`, dir));
      return {
        ...(rest as Partial<EnvironmentConfig>),
        target: targetOf(target, `${at}.target`, dir, stateDir, name),
        strategy: await strategyOf(strategy, `${at}.strategy`, dir),
        strategies: named,
        verifiers: checks,
        notifiers: tell,
        secrets: [...(own as string[]), ...secrets],
        ...(store === undefined
          ? {}
          : {
              store: fileStore({
                dir: resolve(dir, String(typed(store, `${at}.store`).options.dir ?? stateDir)),
              }),
            }),
      };
    };
  }
  return {
    stateDir,
    ...(typeof raw.defaultEnvironment === 'string' ? { defaultEnvironment: raw.defaultEnvironment } : {}),
    environments,
  };
}
