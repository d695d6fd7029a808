import {
  type BackupInfo,
  type BackupProvider,
  type BackupReason,
  CapabilityMissingError,
  ConfigInvalidError,
  sanitizeForTerminal,
  type VerifyLevel,
} from '@codegraph/release-core';
import { type CommandContext, type OpenEngine, openEngine, pairs, parse, positionals } from '../context.js';
import { exitCodes } from '../exit.js';
import type { Output } from '../output.js';
import { restoreCommand } from './recover.js';

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
// Everything but the numbers comes from a manifest someone else wrote: shown with its control characters escaped.
const infoLine = (b: BackupInfo) =>
  sanitizeForTerminal(
    b.damaged
      ? `${b.id}  ${b.createdAt}  DAMAGED: ${b.damaged.reason}`
      : `${b.id}  ${b.createdAt}  ${b.reason.padEnd(12)} ${(b.version ?? '-').padEnd(10)} ${String(b.files).padStart(5)} files ${mb(b.sizeBytes).padStart(10)}${b.verified === undefined ? '' : b.verified ? '  verified' : '  NOT VERIFIED'}`,
  );

/** Parses `30d`, `12h`, `90m`, `45s` into milliseconds. */
export function parseAge(raw: string): number {
  const m = /^(\d+)([smhd])$/.exec(raw.trim());
  if (!m)
    throw new ConfigInvalidError(
      `--max-age takes a number and a unit (s, m, h, d), e.g. 30d; got ${JSON.stringify(raw)}`,
    );
  return Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

const levels: VerifyLevel[] = ['presence', 'checksum', 'scan'];
const reasons: BackupReason[] = ['manual', 'scheduled'];

function providerOf(open: OpenEngine): BackupProvider {
  const backup = open.environment.options.backup;
  if (!backup)
    throw new ConfigInvalidError(
      `environment ${open.environment.name} has no backup provider: add backup: ... to its config`,
    );
  return backup;
}

async function verifyAll(
  ids: string[],
  backup: BackupProvider,
  level: VerifyLevel,
  out: Output,
): Promise<number> {
  let corrupt = 0;
  for (const [i, id] of ids.entries()) {
    out.progress('verifying', i, ids.length, id);
    const v = await backup.verify(id, { level });
    out.json({ type: 'verification', ...v });
    if (!v.ok) corrupt++;
    out.line(`${v.ok ? out.paint('OK', 'green') : out.paint('CORRUPT', 'red')} ${id} (${level})`);
    for (const p of v.problems) out.line(sanitizeForTerminal(`     ${p.problem} ${p.path}: ${p.detail}`));
  }
  out.progress('verifying', ids.length, ids.length, 'done');
  out.line(`${ids.length} backup(s) verified, ${corrupt} corrupt`);
  return corrupt;
}

export async function backup(argv: string[], ctx: CommandContext): Promise<number> {
  const [sub, ...rest] = argv;
  const subs = ['create', 'list', 'verify', 'restore', 'prune'];
  if (!sub || !subs.includes(sub))
    throw new ConfigInvalidError(
      `backup needs one of ${subs.join(', ')}${sub ? `, got ${JSON.stringify(sub)}` : ''}; see codegraph-release backup --help`,
    );
  const { values, positionals: pos } = parse(`backup ${sub}`, rest, {
    reason: { type: 'string' },
    label: { type: 'string', multiple: true },
    all: { type: 'boolean' },
    level: { type: 'string' },
    id: { type: 'string' },
    at: { type: 'string' },
    confirm: { type: 'string' },
    version: { type: 'string' },
    report: { type: 'string' },
    'keep-last': { type: 'string' },
    'max-age': { type: 'string' },
  });
  const { out } = ctx;
  const done = (code: number, data: Record<string, unknown>) => {
    out.json({ type: 'result', command: `backup ${sub}`, exitCode: code, ...data });
    return code;
  };
  // Arguments first: bad input never reaches the provider.
  const level = (values.level ?? 'checksum') as VerifyLevel;
  if (!levels.includes(level))
    throw new ConfigInvalidError(`--level must be ${levels.join(', ')}, got ${JSON.stringify(values.level)}`);
  const reason = (values.reason ?? 'manual') as BackupReason;
  if (sub === 'create' && !reasons.includes(reason))
    throw new ConfigInvalidError(
      `--reason must be manual or scheduled, got ${JSON.stringify(values.reason)}`,
    );
  const labels = pairs('label', values.label);
  if (sub === 'verify') {
    positionals('backup verify', pos, ['id'], 1);
    if ((pos.length === 1) === (values.all === true))
      throw new ConfigInvalidError('backup verify takes a backup id or --all');
  } else positionals(`backup ${sub}`, pos, []);
  if (sub === 'restore') {
    if ((values.id === undefined) === (values.at === undefined))
      throw new ConfigInvalidError('backup restore takes --id <id> or --at <ISO time>');
    if (values.at !== undefined && Number.isNaN(Date.parse(values.at)))
      throw new ConfigInvalidError(`--at must be an ISO time, got ${JSON.stringify(values.at)}`);
    if (values.confirm !== 'CONFIRM')
      throw new ConfigInvalidError(
        'backup restore replaces the database: pass --confirm CONFIRM (and stop the service first); nothing was changed',
      );
  }
  let keepLast: number | undefined;
  let maxAgeMs: number | undefined;
  if (sub === 'prune') {
    if (values['keep-last'] !== undefined) {
      keepLast = Number(values['keep-last']);
      if (!Number.isInteger(keepLast) || keepLast < 1)
        throw new ConfigInvalidError(
          `--keep-last must be an integer >= 1, got ${JSON.stringify(values['keep-last'])}`,
        );
    }
    if (values['max-age'] !== undefined) maxAgeMs = parseAge(values['max-age']);
    if (keepLast === undefined && maxAgeMs === undefined)
      throw new ConfigInvalidError(
        'backup prune needs --keep-last <n> and/or --max-age <age>; nothing was removed',
      );
  }

  // On an environment's live data a restore is a recovery: lock, stop, restore, start, verify.
  if (sub === 'restore') return restoreCommand(values, ctx);
  const open = await openEngine(ctx, values);
  try {
    const provider = providerOf(open);
    const environment = open.environment.name;
    switch (sub) {
      case 'create': {
        out.line(`[${environment}] creating a ${reason} backup with ${provider.name} ...`);
        const info = await provider.create({ reason, environment, labels });
        out.line(infoLine(info));
        return done(exitCodes.ok, { backup: info });
      }
      case 'list': {
        const list = await provider.list();
        if (list.length === 0) out.line(`[${environment}] no backups`);
        for (const b of list) out.line(infoLine(b));
        return done(exitCodes.ok, { backups: list });
      }
      case 'verify': {
        const ids = values.all ? (await provider.list()).map((b) => b.id) : [pos[0]!];
        const corrupt = await verifyAll(ids, provider, level, out);
        if (corrupt > 0)
          out.warn(`CG_BACKUP_CORRUPT: ${corrupt} of ${ids.length} backup(s) failed ${level} verification`);
        return done(corrupt > 0 ? exitCodes.failed : exitCodes.ok, { verified: ids.length, corrupt });
      }
      default: {
        if (!provider.prune)
          throw new CapabilityMissingError(`backup provider ${provider.name} cannot prune`);
        const r = await provider.prune({
          ...(keepLast !== undefined ? { keepLast } : {}),
          ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
        });
        for (const id of r.removed) out.line(`removed ${id}`);
        out.line(`${r.removed.length} removed, ${r.kept.length} kept, ${mb(r.freedBytes)} freed`);
        return done(exitCodes.ok, { prune: r });
      }
    }
  } finally {
    await open.close();
  }
}
