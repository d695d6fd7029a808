import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunKind, RunStatus } from '../events/types.js';
import type { JournalEntry } from '../store/types.js';

/**
 * What a run did, in one JSON document built from its journal: versions, the artifact's hash, the
 * backups taken and restored, migration steps, verdicts and durations. `engine.manifest(runId)` builds
 * it; with the engine's `manifestDir` it is also written as `<runId>.manifest.json` when a run ends.
 *
 * @example
 * ```ts
 * const m = await engine.manifest(result.runId)
 * // { kind: 'release', version: 'v1.2.4', from: 'v1.2.3', status: 'succeeded',
 * //   artifact: { name: 'codegraph-api', sha256: '9f86d0…' }, backups: [{ id: 'b1', role: 'pre-release' }],
 * //   migrations: [{ name: '21-101-shards', status: 'applied', durationMs: 812 }],
 * //   verdicts: [{ step: 'verify', name: 'verify', verdict: 'pass' }], durationMs: 14210, ... }
 * ```
 */
export interface ReleaseManifest {
  runId: string;
  kind: RunKind;
  environment: string;
  /** The version asked for. */
  version: string;
  /** The version serving when the run started. */
  from?: string | undefined;
  /** The version serving when the run ended. */
  serving?: string | undefined;
  /** Absent while the run has not finished. */
  status?: RunStatus | undefined;
  reason?: string | undefined;
  strategy: string;
  target: string;
  startedAt: string;
  finishedAt?: string | undefined;
  durationMs?: number | undefined;
  /** The verified artifact a hotfix installed. */
  artifact?: { name: string; sha256: string; sizeBytes: number; path?: string } | undefined;
  /** Backups taken (`pre-release`, `pre-rollback`) and restored (`restored`, by a recovery). */
  backups: Array<{ id: string; role: 'pre-release' | 'pre-rollback' | 'restored' }>;
  /** Migration steps in the order they ran; a step applied then undone appears as `undone`. */
  migrations: Array<{
    name: string;
    status: 'applied' | 'failed' | 'undone' | 'running';
    durationMs?: number;
  }>;
  /** Every analysis and verification, by the journal step that ran it. */
  verdicts: Array<{ step: string; name: string; verdict: string }>;
  /** Every journal step with how it ended and how long it took. */
  steps: Array<{ key: string; status: 'finished' | 'failed' | 'running'; durationMs?: number }>;
}

const ms = (a: string, b: string) => Date.parse(b) - Date.parse(a);

/**
 * Builds a run's manifest from its journal entries. Pure: no I/O.
 *
 * @example
 * ```ts
 * const manifest = buildManifest(await fileStore({ dir: '.release' }).read(runId))
 * ```
 */
export function buildManifest(entries: readonly JournalEntry[]): ReleaseManifest {
  const head = entries.find((e) => e.type === 'run');
  if (head?.type !== 'run') throw new TypeError('a journal starts with its run header');
  const h = head.header;
  const end = entries.findLast((e) => e.type === 'finished');
  const data = (h.data ?? {}) as {
    artifact?: { name: string; sha256: string; sizeBytes: number };
    backup?: { id: string };
  };
  const started = new Map<string, { time: string; input: unknown }>();
  const steps: ReleaseManifest['steps'] = [];
  const results = new Map<string, unknown>();
  const byKey = new Map<string, ReleaseManifest['steps'][number]>();
  const migrations: ReleaseManifest['migrations'] = [];
  const verdicts: ReleaseManifest['verdicts'] = [];
  for (const e of entries) {
    if (e.type === 'step-started') {
      started.set(e.key, { time: e.time, input: e.input });
      if (!byKey.has(e.key)) {
        const s = { key: e.key, status: 'running' as const };
        byKey.set(e.key, s);
        steps.push(s);
      }
      const step = (e.input as { step?: string } | undefined)?.step;
      if (step && e.key.startsWith('migrate/')) migrations.push({ name: step, status: 'running' });
    } else if (e.type === 'step-finished' || e.type === 'step-failed') {
      const s0 = started.get(e.key);
      const durationMs = s0 ? ms(s0.time, e.time) : undefined;
      const s = byKey.get(e.key);
      if (s) Object.assign(s, { status: e.type === 'step-finished' ? 'finished' : 'failed', durationMs });
      if (e.type === 'step-finished') results.set(e.key, e.result);
      const step = (s0?.input as { step?: string } | undefined)?.step;
      if (step && e.key.startsWith('migrate/')) {
        const m = migrations.findLast((x) => x.name === step);
        if (m) Object.assign(m, { status: e.type === 'step-finished' ? 'applied' : 'failed', durationMs });
      }
      if (step && e.key.startsWith('migrate-undo/') && e.type === 'step-finished') {
        const m = migrations.findLast((x) => x.name === step);
        if (m) m.status = 'undone';
      }
      const r =
        e.type === 'step-finished' ? (e.result as { name?: unknown; verdict?: unknown } | null) : null;
      if (r && typeof r === 'object' && typeof r.verdict === 'string' && typeof r.name === 'string')
        verdicts.push({ step: e.key, name: r.name, verdict: r.verdict });
    }
  }
  const backups: ReleaseManifest['backups'] = [];
  const taken = results.get('backup') as { id?: string; reason?: string } | undefined;
  if (taken?.id) backups.push({ id: taken.id, role: h.kind === 'rollback' ? 'pre-rollback' : 'pre-release' });
  if (h.kind === 'recovery' && data.backup?.id) backups.push({ id: data.backup.id, role: 'restored' });
  const installed = results.get('install') as { path?: string } | undefined;
  const pre = results.get('preflight') as { stable?: { version?: string } | null } | undefined;
  // The run's own end time is journaled with its history step; the `finished` line comes a moment later.
  const recordedEnd = (started.get('history')?.input as { finishedAt?: string } | undefined)?.finishedAt;
  const finishedAt = end ? (recordedEnd ?? end.time) : undefined;
  return {
    runId: h.runId,
    kind: h.kind,
    environment: h.environment,
    version: h.version,
    from: pre?.stable?.version ?? undefined,
    serving: end?.type === 'finished' ? end.serving : undefined,
    status: end?.type === 'finished' ? end.status : undefined,
    reason: end?.type === 'finished' ? (end.reason ?? h.reason) : h.reason,
    strategy: h.strategy,
    target: h.target,
    startedAt: h.startedAt,
    finishedAt,
    durationMs: finishedAt ? ms(h.startedAt, finishedAt) : undefined,
    artifact: data.artifact && {
      name: data.artifact.name,
      sha256: data.artifact.sha256,
      sizeBytes: data.artifact.sizeBytes,
      ...(installed?.path ? { path: installed.path } : {}),
    },
    backups,
    migrations,
    verdicts,
    steps,
  };
}

/** Writes `<dir>/<runId>.manifest.json` atomically (temporary file, fsync, rename). */
export async function writeManifest(dir: string, manifest: ReleaseManifest): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${manifest.runId}.manifest.json`);
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(`${JSON.stringify(manifest, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
  return file;
}
