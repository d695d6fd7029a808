import { TargetOperationError } from '../../errors.js';
import { createRedactor } from '../../util/redact.js';
import { checkCommand, type ResolvedOptions } from './options.js';
import {
  delay,
  freePort,
  groupListensOn,
  isAlive,
  type Spawned,
  spawnDetached,
  stopProcess,
  tail,
} from './processes.js';
import type { ProxyControl } from './proxy-control.js';
import type { ReplicaRecord, StateDir } from './state.js';

/** The base URL of a replica or the proxy. */
export const urlOf = (host: string, port: number): string => `http://${host}:${port}`;

/** A replica whose command was built and checked, not yet started. */
export interface PlannedReplica {
  index: number;
  port: number;
  spec: ReturnType<typeof checkCommand>;
  log: string;
}

/**
 * Builds the commands for the replicas to start, so a bad `command()` result fails before anything
 * is spawned.
 */
export async function planReplicas(
  opts: ResolvedOptions,
  state: StateDir,
  pool: string,
  version: string,
  used: number[],
  count: number,
): Promise<PlannedReplica[]> {
  const planned: PlannedReplica[] = [];
  const taken = new Set(used);
  for (let index = 0; planned.length < count; index++) {
    if (taken.has(index)) continue;
    // The kernel may hand the same free port out twice in a row: never plan two replicas on one port.
    let port = await freePort(opts.host);
    while (planned.some((p) => p.port === port)) port = await freePort(opts.host);
    let spec: unknown;
    try {
      spec = opts.command({ version, pool, port, index });
    } catch (err) {
      throw new TargetOperationError(`${opts.name}: command() threw for pool ${pool}, version ${version}`, {
        cause: err,
        plugin: opts.name,
      });
    }
    planned.push({ index, port, spec: checkCommand(spec, pool), log: state.logFile(`${pool}-${index}`) });
  }
  return planned;
}

/** Hides the values of the replica's extra environment (API keys...) and credentials by shape: core's redactor. */
const redact = (text: string, env: Record<string, string>): string =>
  createRedactor(Object.values(env)).string(text);

/**
 * Starts one planned replica and waits until its health check answers 200. `onSpawned` records the
 * PID before the wait, so a crash of the engine mid-wait leaves the process findable. On failure the
 * replica is stopped and a {@link TargetOperationError} names the pool, version and its log's tail.
 */
export async function startReplica(
  opts: ResolvedOptions,
  control: ProxyControl,
  pool: string,
  version: string,
  plan: PlannedReplica,
  onSpawned: (record: ReplicaRecord) => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<ReplicaRecord> {
  const env = { ...(process.env as Record<string, string>), ...plan.spec.env, PORT: String(plan.port) };
  let child: Spawned;
  try {
    child = await spawnDetached({ ...plan.spec, env, logFile: plan.log });
  } catch (err) {
    throw new TargetOperationError(
      `${opts.name}: cannot start ${plan.spec.command} for pool ${pool}, version ${version}: ${(err as Error).message}`,
      { cause: err, plugin: opts.name, details: { pool, version, index: plan.index } },
    );
  }
  const record: ReplicaRecord = {
    pid: child.pid,
    startTicks: child.startTicks,
    index: plan.index,
    port: plan.port,
    log: plan.log,
  };
  const url = `${urlOf(opts.host, plan.port)}${opts.healthPath}`;
  const deadline = Date.now() + opts.readyTimeoutMs;
  let why: string | undefined;
  let portTaken = false;
  try {
    await onSpawned(record);
    for (;;) {
      if (await control.healthy(url, signal, Math.max(1, Math.min(1_000, deadline - Date.now())))) {
        // Ready only if the answer came from this replica, not from a process that took its port first.
        if (groupListensOn(record.pid, plan.port) !== false) return record;
        why = `found port ${plan.port} taken by another process (it answered ${opts.healthPath} in the replica's place)`;
        portTaken = true;
        break;
      }
      if (child.exitedNow() || !isAlive(record)) {
        const { code, signal: sig } = await child.exited;
        why = `exited (${sig ?? `code ${code}`}) before it was ready`;
      } else if (Date.now() >= deadline) {
        why = `did not answer ${opts.healthPath} with 200 within ${opts.readyTimeoutMs} ms`;
      }
      if (why) break;
      await delay(25, signal, `waiting for pool ${pool} to be ready`);
    }
  } catch (err) {
    // Cancelled (or the state could not be written): leave no half-started replica behind.
    await stopProcess(record, opts.stopTimeoutMs);
    throw err;
  }
  await stopProcess(record, opts.stopTimeoutMs);
  const logTail = redact(await tail(plan.log, 1_500), plan.spec.env);
  throw new TargetOperationError(
    `${opts.name}: replica ${plan.index} of pool ${pool} (version ${version}) ${why}; it was stopped. ` +
      `Its log ${plan.log} ends with:\n${logTail}`,
    {
      plugin: opts.name,
      // A port lost to another process is worth another try: provision is idempotent and picks new ports.
      retryable: portTaken,
      details: { pool, version, index: plan.index, port: plan.port, pid: record.pid, log: plan.log },
    },
  );
}
