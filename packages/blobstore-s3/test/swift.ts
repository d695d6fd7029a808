import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

const script = fileURLToPath(new URL('../../../scripts/start-swift.sh', import.meta.url));

/** A running OpenStack Swift with the S3 API on loopback (scripts/start-swift.sh). */
export interface Swift {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** PIDs of the account, container, object and proxy servers. */
  pids: number[];
  dir: string;
  /** A client for setting up and tampering with buckets in tests. */
  client: S3Client;
  /** Creates a bucket with a fresh name and returns it. */
  bucket(): Promise<string>;
  stop(): Promise<void>;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Starts Swift in a fresh temp directory on free loopback ports, with a random S3 secret. Fails loudly
 * (never skips) when Swift is not installed: `bash scripts/install-test-deps.sh` installs it.
 */
export async function startSwift(): Promise<Swift> {
  const dir = await mkdtemp(join(tmpdir(), 'cg-swift-'));
  const secretAccessKey = randomBytes(16).toString('hex');
  const child: ChildProcess = spawn('bash', [script, dir, secretAccessKey], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const starting = new Promise<{ endpoint: string; accessKeyId: string; region: string; pids: number[] }>(
    (resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`Swift did not start in 120 s:\n${out}\n${err}`)),
        120_000,
      );
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const line = /^SWIFT_READY (.*)$/m.exec(out);
        if (line) {
          clearTimeout(timer);
          resolve(JSON.parse(line[1] ?? '{}'));
        }
      });
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(
          new Error(
            `scripts/start-swift.sh exited with ${code} (install Swift: bash scripts/install-test-deps.sh):\n${err}`,
          ),
        );
      });
    },
  );
  const ready = await starting.catch(async (err: unknown) => {
    // A start that failed or timed out leaves nothing behind: the script stops its servers on SIGTERM.
    child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  const client = new S3Client({
    endpoint: ready.endpoint,
    region: ready.region,
    forcePathStyle: true,
    credentials: { accessKeyId: ready.accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  let n = 0;
  return {
    ...ready,
    secretAccessKey,
    dir,
    client,
    async bucket() {
      const name = `cg-test-${process.pid}-${++n}`;
      // A server still warming up answers 503: try again for a few seconds.
      for (let attempt = 1; ; attempt++) {
        try {
          await client.send(new CreateBucketCommand({ Bucket: name }));
          return name;
        } catch (err) {
          if (
            (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 503 ||
            attempt >= 20
          )
            throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    },
    async stop() {
      client.destroy();
      child.kill('SIGTERM');
      const deadline = Date.now() + 10_000;
      while (ready.pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      for (const pid of ready.pids.filter(alive)) process.kill(pid, 'SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
