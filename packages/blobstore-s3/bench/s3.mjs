// Bench of @codegraph/blobstore-s3 against Debian's AWS CLI (`aws s3 cp --recursive`), both against the same
// OpenStack Swift (s3api, SigV4) started by scripts/start-swift.sh, on a db_bench database of about 1 GB.
// Run: npm run bench (in packages/blobstore-s3). One JSON object per line on stdout, the headline last.
// Both tools read a warm page cache (dropping caches needs root and would disturb other users of the machine).
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

const exec = promisify(execFile);
const MB = 1024 * 1024;
const NUM = Number(process.env.BENCH_NUM ?? 1_300_000); // 1.3 M values of 1000 bytes: about 1 GB on disk
const AWS = '/usr/bin/aws'; // Debian's awscli, not a pip one earlier on PATH
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const log = (msg) => process.stderr.write(`bench: ${msg}\n`);
const emit = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

for (const [file, fix] of [
  [here('../../backup-rocksdb/dist/index.js'), 'npm run build (at the repository root)'],
  [AWS, 'bash scripts/install-test-deps.sh (Debian package awscli)'],
  ['/usr/bin/swift-proxy-server', 'bash scripts/install-test-deps.sh (Debian packages swift-*)'],
]) {
  if (!existsSync(file)) throw new Error(`${file} is missing: ${fix}`);
}
const { rocksdbBackup } = await import('@codegraph/backup-rocksdb');
const { s3BlobStore } = await import('../dist/index.js');

let swiftPids = [];
async function timed(fn) {
  const cpu0 = swiftPids.length ? await swiftCpu(swiftPids) : 0;
  const me0 = process.cpuUsage();
  const t = process.hrtime.bigint();
  const value = await fn();
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  const me = process.cpuUsage(me0);
  const swiftCpuS = swiftPids.length ? (await swiftCpu(swiftPids)) - cpu0 : 0;
  return {
    s,
    value,
    cpu: {
      swift_cpu_s: Number(swiftCpuS.toFixed(2)),
      node_cpu_s: Number(((me.user + me.system) / 1e6).toFixed(2)),
    },
  };
}

async function dirBytes(dir) {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

/** CPU seconds the Swift servers used so far (user + system, from /proc). */
async function swiftCpu(pids) {
  const { readFile } = await import('node:fs/promises');
  let ticks = 0;
  for (const pid of pids) {
    const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
    ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / 100;
}

async function startSwift(dir, secret) {
  const child = spawn('bash', [here('../../../scripts/start-swift.sh'), dir, secret], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const ready = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^SWIFT_READY (.*)$/m.exec(out);
      if (m) resolve(JSON.parse(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`start-swift.sh exited with ${code}`)));
  });
  return { ...ready, child };
}

const work = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'cg-s3-bench-'));
const secret = randomBytes(16).toString('hex');
let swift;
try {
  swift = await startSwift(join(work, 'swift'), secret);
  swiftPids = swift.pids;
  log(`swift on ${swift.endpoint} (pids ${swift.pids.join(' ')})`);
  const env = {
    ...process.env,
    AWS_ACCESS_KEY_ID: swift.accessKeyId,
    AWS_SECRET_ACCESS_KEY: secret,
    AWS_DEFAULT_REGION: swift.region,
    AWS_PAGER: '',
  };
  const credentials = { accessKeyId: swift.accessKeyId, secretAccessKey: secret };
  const admin = new S3Client({
    endpoint: swift.endpoint,
    region: swift.region,
    forcePathStyle: true,
    credentials,
  });
  for (const b of ['bench-awscli', 'bench-codegraph'])
    await admin.send(new CreateBucketCommand({ Bucket: b }));
  admin.destroy();

  const db = join(work, 'db');
  log(`making a ${NUM}-value database with db_bench in ${db}`);
  await exec('db_bench', [
    '--benchmarks=fillrandom',
    `--db=${db}`,
    `--num=${NUM}`,
    '--value_size=1000',
    '--compression_type=none',
    // Without a WAL, RocksDB flushes the memtable on close: every value is in an SST file.
    '--disable_wal=1',
    '--seed=1',
  ]);
  const dbBytes = await dirBytes(db);
  log(`database: ${(dbBytes / MB).toFixed(0)} MB in ${(await readdir(db)).length} files`);
  const aws = (args) =>
    exec(AWS, ['--endpoint-url', swift.endpoint, 's3', ...args, '--only-show-errors'], { env });

  // Upload: the AWS CLI's recursive copy, then a full backup (hash, upload, read back and hash every blob).
  const awsUp = await timed(() => aws(['cp', '--recursive', db, 's3://bench-awscli/db/']));
  emit({ phase: 'awscli_upload', seconds: awsUp.s, mb_per_s: dbBytes / MB / awsUp.s, ...awsUp.cpu });
  const store = s3BlobStore({
    bucket: 'bench-codegraph',
    endpoint: swift.endpoint,
    region: swift.region,
    credentials,
  });
  const concurrency = process.env.BENCH_CONCURRENCY ? Number(process.env.BENCH_CONCURRENCY) : undefined;
  const backup = rocksdbBackup({ repository: store, db, ...(concurrency ? { concurrency } : {}) });
  const full = await timed(() => backup.create({ reason: 'scheduled' }));
  emit({
    phase: 'backup_full',
    seconds: full.s,
    mb_per_s: full.value.sizeBytes / MB / full.s,
    ...full.cpu,
    uploaded_bytes: store.traffic().uploadedBytes,
    read_back_bytes: store.traffic().downloadedBytes,
  });

  if (process.env.BENCH_UPLOAD_ONLY) {
    emit({ upload_vs_awscli: awsUp.s / full.s, peak_rss_mb: process.resourceUsage().maxRSS / 1024 });
    throw new Error('BENCH_UPLOAD_ONLY: stopped after the upload figures');
  }
  // Download: the AWS CLI's recursive copy back, then a restore (every file hashed as it streams, fsynced).
  const awsDown = await timed(() =>
    aws(['cp', '--recursive', 's3://bench-awscli/db/', join(work, 'awscli-copy')]),
  );
  emit({ phase: 'awscli_download', seconds: awsDown.s, mb_per_s: dbBytes / MB / awsDown.s, ...awsDown.cpu });
  const restoreDir = join(work, 'restored');
  const restore = await timed(() =>
    rocksdbBackup({ repository: store, db: restoreDir }).restore({ id: full.value.id }),
  );
  emit({
    phase: 'restore',
    seconds: restore.s,
    mb_per_s: full.value.sizeBytes / MB / restore.s,
    ...restore.cpu,
  });

  // Incremental: +5 % writes make new SST files; the second backup must send only those.
  const before = new Set((await readdir(db)).filter((n) => n.endsWith('.sst')));
  await exec('db_bench', [
    '--benchmarks=overwrite',
    `--db=${db}`,
    `--num=${NUM}`,
    `--writes=${Math.round(NUM * 0.05)}`,
    '--value_size=1000',
    '--compression_type=none',
    '--use_existing_db=1',
    '--disable_auto_compactions=1',
    '--disable_wal=1',
    '--seed=2',
  ]);
  let newSstBytes = 0;
  for (const n of await readdir(db)) {
    if (n.endsWith('.sst') && !before.has(n)) newSstBytes += (await stat(join(db, n))).size;
  }
  const sentBefore = store.traffic().uploadedBytes;
  const incremental = await timed(() => backup.create({ reason: 'scheduled' }));
  const incrementalBytes = store.traffic().uploadedBytes - sentBefore;
  emit({
    phase: 'backup_incremental',
    seconds: incremental.s,
    uploaded_bytes: incrementalBytes,
    new_sst_bytes: newSstBytes,
    written_bytes: incremental.value.sizeBytes,
  });
  store.close();

  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  const upload = awsUp.s / full.s;
  const download = awsDown.s / restore.s;
  const ratio = incrementalBytes / newSstBytes;
  emit({
    bench: 'blobstore-s3',
    baseline: `aws s3 cp --recursive (${(await exec(AWS, ['--version'])).stdout.trim().split(' ')[0]}) against the same Swift`,
    db_bytes: dbBytes,
    upload_vs_awscli: Number(upload.toFixed(3)),
    download_vs_awscli: Number(download.toFixed(3)),
    incremental_bytes_uploaded: incrementalBytes,
    new_sst_bytes: newSstBytes,
    incremental_ratio: Number(ratio.toFixed(3)),
    peak_rss_mb: Number(peakRssMb.toFixed(1)),
    pass: upload >= 1 && download >= 1 && ratio <= 1.1 && peakRssMb < 200,
  });
} finally {
  if (swift) {
    swift.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    for (const pid of swift.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
  await rm(work, { recursive: true, force: true });
}
