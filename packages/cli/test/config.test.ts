import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@codegraph/release-core';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveEnvironment } from '../src/config/environment.js';
import { defineConfig, loadConfig } from '../src/index.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function dirWith(files: Record<string, string>): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'cg-cli-config-'));
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) await writeFile(join(d, name), text);
  return d;
}

const codeOf = async (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (err: { code?: string; message: string }) => `${err.code}: ${err.message}`,
  );

describe('defineConfig and the config loader', () => {
  it('names the field of a malformed config (CG_CONFIG_INVALID)', () => {
    const bad = (c: unknown) => {
      try {
        defineConfig(c as Parameters<typeof defineConfig>[0]);
        return 'accepted';
      } catch (err) {
        return `${(err as { code: string }).code}: ${(err as Error).message}`;
      }
    };
    expect(bad({ environments: {} })).toMatch(
      /^CG_CONFIG_INVALID: config: environments must name at least one/,
    );
    expect(bad({ environments: { 'prod env': {} } })).toMatch(/environment name "prod env"/);
    expect(bad({ environments: { staging: 42 } })).toMatch(
      /environments\.staging must be an object or a function/,
    );
    expect(bad({ stateDir: '', environments: { staging: {} } })).toMatch(/stateDir must be a directory path/);
    expect(bad({ defaultEnvironment: 'prod', environments: { staging: {} } })).toMatch(
      /defaultEnvironment "prod" is not one of staging/,
    );
  });

  it('finds release.config.ts before release.config.json and resolves stateDir next to the file', async () => {
    const d = await dirWith({
      'release.config.ts': "export default { stateDir: 'state', environments: { ts: {} } } as const;",
      'release.config.json': JSON.stringify({ environments: { json: {} } }),
    });
    const loaded = await loadConfig(d);
    expect(loaded.file).toBe(join(d, 'release.config.ts'));
    expect(Object.keys(loaded.config.environments)).toEqual(['ts']);
    expect(loaded.stateDir).toBe(join(d, 'state'));
  });

  it('reports a config that fails to load, and a --config that does not exist', async () => {
    const d = await dirWith({ 'release.config.mjs': "throw new Error('SLACK_WEBHOOK_URL is not set');" });
    expect(await codeOf(loadConfig(d))).toMatch(
      /^CG_CONFIG_INVALID: config file .* could not be loaded: SLACK_WEBHOOK_URL is not set/,
    );
    expect(await codeOf(loadConfig(d, 'nope.ts'))).toBe(
      'CG_CONFIG_INVALID: config file nope.ts does not exist',
    );
  });

  it('builds only the environment asked for: another environment’s missing secrets do not matter', async () => {
    const d = await dirWith({
      'release.config.mjs': `import { fileStore, localTarget, rolling } from '@codegraph/release-core';
export default {
  environments: {
    staging: ({ stateDir }) => ({ target: localTarget({ stateDir: stateDir + '/l', command: () => ({ command: 'true' }) }), strategy: rolling() }),
    production: () => { throw new Error('PAGERDUTY_ROUTING_KEY is not set'); },
  },
};`,
    });
    const loaded = await loadConfig(d);
    const staging = await resolveEnvironment(loaded, 'staging', { logger: silentLogger });
    expect(staging.options.environment).toBe('staging');
    expect(staging.options.strategy.name).toBe('rolling');
    expect(await codeOf(resolveEnvironment(loaded, 'production', { logger: silentLogger }))).toMatch(
      /PAGERDUTY_ROUTING_KEY/,
    );
    expect(
      await codeOf(resolveEnvironment(loaded, 'staging', { logger: silentLogger, strategy: 'canary' })),
    ).toBe('CG_CONFIG_INVALID: strategy canary is not configured for staging (known: rolling)');
  });

  it(
    'reads a "$' +
      '{NAME}" value from the environment in a JSON config, keeps it secret, and names a missing one',
    async () => {
      const env = {
        staging: {
          target: { type: 'local', command: '{node}', args: ['-e', '0'] },
          strategy: { type: 'rolling' },
          notifiers: [{ type: 'webhook', url: '$' + '{CG_TEST_HOOK}', secret: 'signing-secret-0123456789' }],
        },
      };
      const d = await dirWith({ 'release.config.json': JSON.stringify({ environments: env }) });
      const loaded = await loadConfig(d);
      delete process.env.CG_TEST_HOOK;
      expect(await codeOf(resolveEnvironment(loaded, 'staging', { logger: silentLogger }))).toBe(
        'CG_CONFIG_INVALID: config: environments.staging.notifiers[0].url needs the environment variable CG_TEST_HOOK',
      );
      process.env.CG_TEST_HOOK = 'http://127.0.0.1:9/hooks/secret-path';
      try {
        const staging = await resolveEnvironment(loaded, 'staging', { logger: silentLogger });
        expect(staging.options.notifiers?.map((n) => n.name)).toEqual(['webhook']);
        expect(staging.secrets).toContain('http://127.0.0.1:9/hooks/secret-path');
      } finally {
        delete process.env.CG_TEST_HOOK;
      }
    },
  );

  it('refuses an unknown plugin type in a JSON config', async () => {
    const d = await dirWith({
      'release.config.json': JSON.stringify({
        environments: {
          staging: { target: { type: 'local', command: '{node}' }, strategy: { type: 'big-bang' } },
        },
      }),
    });
    const loaded = await loadConfig(d);
    expect(await codeOf(resolveEnvironment(loaded, undefined, { logger: silentLogger }))).toBe(
      'CG_CONFIG_INVALID: config: environments.staging.strategy.type must be rolling, canary or blueGreen, got "big-bang"',
    );
  });
});
