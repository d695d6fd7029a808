import { generateKeyPairSync } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ArtifactOptions,
  artifactPath,
  type BackupProvider,
  createReleaseEngine,
  fileStore,
  localTarget,
  rolling,
  sha256File,
  verifyArtifact,
} from '../src/index.js';
import { directoryBackup, serviceChecks } from './helpers/release-env.js';
import {
  readJson,
  run,
  signingKey,
  signRelease,
  tempDirs,
  writeServiceArtifact,
} from './recovery-helpers.js';

// The runbook's hotfix script as an engine call: the artifact is checked against a signed SHA256SUMS
// before anything changes, installed beside the current build, health-checked, and rolled back
// automatically when the check fails.
const dirs = tempDirs();
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
  await dirs.cleanup();
});

async function hotfixEnv() {
  const dir = await dirs.make('hotfix');
  const key = await signingKey(dir);
  const artifacts: ArtifactOptions = {
    dir: join(dir, 'releases'),
    publicKey: key.publicPem,
    fileName: 'codegraph-api.mjs',
  };
  const target = localTarget({
    stateDir: join(dir, 'local'),
    readyTimeoutMs: 10_000,
    stopTimeoutMs: 3_000,
    // The installed artifact's path reaches the command template through artifactPath().
    command: ({ version, port }) => ({
      command: process.execPath,
      args: [artifactPath(artifacts, version), '--port', String(port), '--version', version],
    }),
  });
  cleanups.push(() => target.destroy());
  const storeDir = join(dir, 'store');
  const store = fileStore({ dir: storeDir });
  const engine = createReleaseEngine({
    environment: 'production',
    target,
    strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
    store,
    verifiers: [serviceChecks],
    replicas: 2,
    metrics: false,
    artifacts,
    manifestDir: join(storeDir, 'runs'),
  });
  /** A downloaded release folder: the artifact, SHA256SUMS (sha256sum) and its signature (openssl). */
  async function build(version: string, o: { env?: Record<string, string>; signer?: string } = {}) {
    const out = join(dir, 'downloads', version);
    await mkdir(out, { recursive: true });
    const file = join(out, `codegraph-${version}.mjs`);
    await writeServiceArtifact(file, { note: `codegraph-api ${version}`, ...(o.env ? { env: o.env } : {}) });
    return { file, ...(await signRelease([file], o.signer ?? key.privateKey)) };
  }
  async function serving(): Promise<string> {
    const res = await fetch(`${await target.endpoint()}/health`);
    return ((await res.json()) as { version: string }).version;
  }
  return { dir, key, artifacts, target, store, storeDir, engine, build, serving };
}

/** The build the hotfixes start from; a failure here says why, rather than failing a later check. */
async function releaseFirst(env: Awaited<ReturnType<typeof hotfixEnv>>) {
  const first = await env.engine.release({ version: 'v1.4.0', artifact: await env.build('v1.4.0') });
  expect(first, first.reason).toMatchObject({ status: 'succeeded', serving: 'v1.4.0' });
}

describe('hotfix deployment', () => {
  it('installs the verified hotfix beside the current build, health-checks it and serves it', async () => {
    const env = await hotfixEnv();
    const v1 = await env.build('v1.4.0');
    expect((await env.engine.release({ version: 'v1.4.0', artifact: v1 })).status).toBe('succeeded');
    const v1Sha = await sha256File(artifactPath(env.artifacts, 'v1.4.0'));

    const fix = await env.build('v1.4.1');
    const result = await env.engine.release({ version: 'v1.4.1', artifact: fix, reason: 'hotfix CVE' });
    expect(result).toMatchObject({ status: 'succeeded', from: 'v1.4.0', serving: 'v1.4.1' });
    expect(await env.serving()).toBe('v1.4.1');
    // The current artifact is kept, unchanged, for a rollback; the new one is read-only and executable.
    expect(await sha256File(artifactPath(env.artifacts, 'v1.4.0'))).toBe(v1Sha);
    expect((await stat(artifactPath(env.artifacts, 'v1.4.1'))).mode & 0o777).toBe(0o555);
    // The manifest, next to the journal, carries the hash sha256sum computed.
    const expected = (await run('sha256sum', [fix.file])).split(' ')[0];
    const manifest = await env.engine.manifest(result.runId);
    expect(manifest.artifact).toMatchObject({ name: basename(fix.file), sha256: expected });
    expect(await readJson(join(env.storeDir, 'runs', `${result.runId}.manifest.json`))).toEqual(manifest);
    expect(manifest.steps.map((s) => s.key)).toContain('install');
  });

  it('rolls the hotfix back automatically when its health check fails', async () => {
    const env = await hotfixEnv();
    await releaseFirst(env);
    const v1Sha = await sha256File(artifactPath(env.artifacts, 'v1.4.0'));
    const broken = await env.build('v1.4.2', { env: { FAULT_ERROR_RATE: '1' } });
    const result = await env.engine.release({ version: 'v1.4.2', artifact: broken });
    expect(result).toMatchObject({ status: 'rolled-back', from: 'v1.4.0', serving: 'v1.4.0' });
    expect(result.incident).toMatchObject({ severity: 'P2', from: 'v1.4.2', to: 'v1.4.0' });
    expect(await env.serving()).toBe('v1.4.0');
    expect((await env.target.describe()).pools.map((p) => [p.version, p.weight])).toEqual([['v1.4.0', 100]]);
    expect(await sha256File(artifactPath(env.artifacts, 'v1.4.0'))).toBe(v1Sha);
    expect((await env.engine.history()).map((h) => [h.version, h.status])).toEqual([
      ['v1.4.0', 'succeeded'],
      ['v1.4.2', 'rolled-back'],
    ]);
  });

  it('does not install an artifact swapped after it was verified, and keeps the current one serving', async () => {
    const env = await hotfixEnv();
    await releaseFirst(env);
    const fix = await env.build('v1.4.4');
    // The file changes on disk while the pre-release backup runs (after verification, before install).
    const data = join(env.dir, 'data');
    await mkdir(data, { recursive: true });
    const copy = directoryBackup(data, join(env.dir, 'backups'));
    const swapping: BackupProvider = {
      ...copy,
      async create(request, ctx) {
        await appendFile(fix.file, 'process.exit(0);\n');
        return copy.create(request, ctx);
      },
    };
    const engine = createReleaseEngine({
      environment: 'production',
      target: env.target,
      strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
      store: env.store,
      verifiers: [serviceChecks],
      replicas: 2,
      metrics: false,
      artifacts: env.artifacts,
      backup: swapping,
    });
    const result = await engine.release({ version: 'v1.4.4', artifact: fix });
    expect(result).toMatchObject({
      status: 'rolled-back',
      serving: 'v1.4.0',
      error: { code: 'CG_ARTIFACT_INVALID' },
    });
    expect(await readdir(join(env.artifacts.dir, 'v1.4.4')).catch(() => [])).toEqual([]);
    expect(await env.serving()).toBe('v1.4.0');
  });

  describe('refuses before anything changes', () => {
    async function expectNothingChanged(
      env: Awaited<ReturnType<typeof hotfixEnv>>,
      version: string,
      runs: number,
    ) {
      expect((await env.store.runs('production')).length).toBe(runs);
      expect(await readdir(env.artifacts.dir)).not.toContain(version);
      expect((await env.target.describe()).pools.map((p) => [p.version, p.weight])).toEqual([
        ['v1.4.0', 100],
      ]);
      expect(await env.serving()).toBe('v1.4.0');
    }

    it('an artifact altered after it was signed (checksum)', async () => {
      const env = await hotfixEnv();
      await releaseFirst(env);
      const fix = await env.build('v1.4.3');
      await appendFile(fix.file, 'process.exit(0);\n');
      await expect(env.engine.release({ version: 'v1.4.3', artifact: fix })).rejects.toMatchObject({
        code: 'CG_ARTIFACT_INVALID',
        details: { reason: 'checksum' },
      });
      await expectNothingChanged(env, 'v1.4.3', 1);
    });

    it('a SHA256SUMS rewritten to match an altered artifact (bad signature)', async () => {
      const env = await hotfixEnv();
      await releaseFirst(env);
      const fix = await env.build('v1.4.3');
      await appendFile(fix.file, 'process.exit(0);\n');
      await writeFile(fix.sums, await run('sha256sum', [basename(fix.file)], join(fix.file, '..')));
      await expect(env.engine.release({ version: 'v1.4.3', artifact: fix })).rejects.toMatchObject({
        code: 'CG_ARTIFACT_INVALID',
        details: { reason: 'signature' },
      });
      await expectNothingChanged(env, 'v1.4.3', 1);
    });

    it('an artifact signed by another key', async () => {
      const env = await hotfixEnv();
      await releaseFirst(env);
      const other = await signingKey(env.dir);
      const fix = await env.build('v1.4.3', { signer: other.privateKey });
      await expect(env.engine.release({ version: 'v1.4.3', artifact: fix })).rejects.toMatchObject({
        code: 'CG_ARTIFACT_INVALID',
        details: { reason: 'signature' },
      });
      await expectNothingChanged(env, 'v1.4.3', 1);
    });

    it('a different artifact under a version that is already installed', async () => {
      const env = await hotfixEnv();
      await releaseFirst(env);
      const before = await sha256File(artifactPath(env.artifacts, 'v1.4.0'));
      const other = await env.build('v1.4.0', { env: { FAULT_LATENCY_MS: '5' } });
      await expect(env.engine.release({ version: 'v1.4.0', artifact: other })).rejects.toMatchObject({
        code: 'CG_ARTIFACT_INVALID',
        details: { reason: 'installed-differs' },
      });
      expect(await sha256File(artifactPath(env.artifacts, 'v1.4.0'))).toBe(before);
      expect((await env.store.runs('production')).length).toBe(1);
    });

    it('a release with an artifact on an engine without an artifacts option', async () => {
      const env = await hotfixEnv();
      const engine = createReleaseEngine({
        environment: 'production',
        target: env.target,
        strategy: rolling(),
        store: env.store,
        metrics: false,
      });
      await expect(
        engine.release({ version: 'v1.4.0', artifact: await env.build('v1.4.0') }),
      ).rejects.toMatchObject({
        code: 'CG_CONFIG_INVALID',
      });
      expect(await env.store.runs('production')).toEqual([]);
    });
  });
});

describe('verifyArtifact', () => {
  it('accepts a file listed in a SHA256SUMS signed with openssl, and reports its hash and size', async () => {
    const dir = await dirs.make('verify');
    const key = await signingKey(dir);
    const a = join(dir, 'codegraph-linux-x86_64.tar.gz');
    const b = join(dir, 'codegraph.sbom.json');
    await writeFile(a, Buffer.alloc(300_000, 7));
    await writeFile(b, '{"spdxVersion":"SPDX-2.3"}');
    const signed = await signRelease([a, b], key.privateKey);
    const ok = await verifyArtifact({ file: b, ...signed, publicKey: key.publicPem });
    expect(ok).toMatchObject({ name: basename(b), sizeBytes: 26 });
    expect(ok.sha256).toBe((await run('sha256sum', [b])).split(' ')[0]);
    // A base64 signature is accepted too.
    const b64 = join(dir, 'sig.b64');
    await writeFile(b64, (await readFile(signed.signature)).toString('base64'));
    await expect(
      verifyArtifact({ file: a, sums: signed.sums, signature: b64, publicKey: key.publicPem }),
    ).resolves.toMatchObject({
      sizeBytes: 300_000,
    });
  });

  it('refuses a file SHA256SUMS does not list, a malformed signature, and a key that is not ed25519', async () => {
    const dir = await dirs.make('verify');
    const key = await signingKey(dir);
    const a = join(dir, 'a.bin');
    const stray = join(dir, 'stray.bin');
    await writeFile(a, 'a');
    await writeFile(stray, 'b');
    const signed = await signRelease([a], key.privateKey);
    await expect(verifyArtifact({ file: stray, ...signed, publicKey: key.publicPem })).rejects.toMatchObject({
      code: 'CG_ARTIFACT_INVALID',
      details: { reason: 'not-listed' },
    });
    const junk = join(dir, 'junk.sig');
    await writeFile(junk, 'not a signature');
    await expect(
      verifyArtifact({ file: a, sums: signed.sums, signature: junk, publicKey: key.publicPem }),
    ).rejects.toMatchObject({ code: 'CG_ARTIFACT_INVALID', details: { reason: 'signature-malformed' } });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    await expect(verifyArtifact({ file: a, ...signed, publicKey: rsa })).rejects.toMatchObject({
      code: 'CG_CONFIG_INVALID',
    });
    await expect(
      verifyArtifact({ file: a, sums: '', signature: signed.signature, publicKey: key.publicPem }),
    ).rejects.toMatchObject({
      code: 'CG_CONFIG_INVALID',
    });
  });
});
