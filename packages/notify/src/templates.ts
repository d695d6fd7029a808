import type {
  AnalysisResult,
  IncidentReport,
  ReleaseEvent,
  ReleaseEventOf,
  ReleaseEventType,
  RunFinishedEvent,
  Severity,
} from '@codegraph/release-core';
import { formatDuration } from './utils/text.js';

/**
 * What a notice announces. Routing (`notices`) and PagerDuty's trigger/resolve choice use it.
 *
 * @example
 * ```ts
 * const incidentsOnly: NoticeKind[] = ['incident.opened', 'incident.resolved', 'release.failed']
 * ```
 */
export type NoticeKind =
  /** A release began. */
  | 'release.started'
  /** Traffic weights moved (opt-in: `weightChanges: true`). */
  | 'weight.changed'
  /** A release finished and its version serves. */
  | 'release.promoted'
  /** An analysis gate failed or could not measure. */
  | 'analysis.failed'
  /** A release failed and the previous version serves again, verified. */
  | 'release.rolled-back'
  /** A run failed and could not restore a verified state: a human must look. */
  | 'release.failed'
  /** An emergency rollback or recovery began: the runbook's P0 "Initial Alert". */
  | 'incident.opened'
  /** An emergency rollback or recovery restored service: the runbook's "Resolution Notice". */
  | 'incident.resolved'
  /** A backup could not be created. */
  | 'backup.failed';

/**
 * Every notice kind, in the order a run produces them.
 *
 * @example
 * ```ts
 * const allButStarts = noticeKinds.filter((k) => k !== 'release.started')
 * ```
 */
export const noticeKinds: readonly NoticeKind[] = [
  'release.started',
  'weight.changed',
  'analysis.failed',
  'backup.failed',
  'release.promoted',
  'release.rolled-back',
  'release.failed',
  'incident.opened',
  'incident.resolved',
];

/**
 * One labelled value: `Status: Investigating`.
 *
 * @example
 * ```ts
 * const field: NoticeField = { label: 'Status', value: 'Investigating' }
 * ```
 */
export interface NoticeField {
  label: string;
  value: string;
}

/**
 * A destination-neutral message: every destination renders the same notice in its own format
 * (Block Kit, Adaptive Card, embed, PagerDuty event, JSON, text).
 *
 * @example
 * ```ts
 * const notice = renderNotice(event)
 * if (notice?.severity === 'P0') page(notice.title)
 * ```
 */
export interface Notice {
  kind: NoticeKind;
  /** Runbook severity: P0 service down ... P3 informational. */
  severity: Severity;
  /** Colour and emphasis: `critical` red, `warning` amber, `success` green, `info` neutral. */
  tone: 'info' | 'success' | 'warning' | 'critical';
  /** One line, e.g. `🚨 P0 INCIDENT: CodeGraph production emergency rollback to v1.2.2`. */
  title: string;
  /** A short paragraph. */
  text: string;
  /** Labelled values in runbook order: Status, Impact, Started, Duration... */
  fields: NoticeField[];
  /** A titled bullet list, e.g. `Actions Taken` or `Resolution`. */
  list?: { title: string; items: string[] } | undefined;
  /** A closing line, e.g. `Next Update: In 15 minutes`. */
  footer?: string | undefined;
  runId: string;
  environment: string;
  /** ISO time of the event. */
  time: string;
}

/**
 * Replaces the notice of one event type. Receives the event and the default notice (or `null` when
 * the default says nothing); returns the notice to send, or `null` to send nothing.
 *
 * @example
 * ```ts
 * const started: Template<'run.started'> = (event, fallback) =>
 *   fallback && { ...fallback, title: `Deploying ${event.version}` }
 * ```
 */
export type Template<T extends ReleaseEventType> = (
  event: ReleaseEventOf<T>,
  fallback: Notice | null,
) => Notice | null;

/**
 * Template overrides, typed per event type.
 *
 * @example
 * ```ts
 * const templates: Templates = {
 *   'run.started': (event, fallback) =>
 *     fallback && { ...fallback, text: `${fallback.text} Owner: @release-team` },
 * }
 * ```
 */
export type Templates = { [T in ReleaseEventType]?: Template<T> };

/**
 * Wording of the runbook templates.
 *
 * @example
 * ```ts
 * slack({ webhookUrl, service: 'CodeGraph API', nextUpdate: 'In 30 minutes' })
 * ```
 */
export interface RunbookWording {
  /** The service name in titles. @default 'CodeGraph' */
  service?: string;
  /** The Impact line of an initial alert. @default 'Release of <from> rolled back in <environment>; service may be degraded' */
  impact?: string;
  /** The Next Update line of an initial alert. @default 'In 15 minutes' */
  nextUpdate?: string;
  /** The Post-Incident line of a resolution notice. @default 'Full post-mortem will be conducted' */
  postIncident?: string;
}

/**
 * Options of {@link renderNotice}.
 *
 * @example
 * ```ts
 * const options: RenderOptions = { weightChanges: true, templates: { 'backup.failed': () => null } }
 * ```
 */
export interface RenderOptions extends RunbookWording {
  templates?: Templates | undefined;
  /** Announce traffic weight changes. @default false */
  weightChanges?: boolean | undefined;
}

/**
 * The notice for an event: the user's template for the event type when there is one, else the default.
 * Returns `null` for events that say nothing to people (phases, actions, passing analyses...).
 *
 * @example
 * ```ts
 * const notice = renderNotice(event, { service: 'CodeGraph', weightChanges: true })
 * if (notice) console.log(notice.title)
 * ```
 */
export function renderNotice(event: ReleaseEvent, options: RenderOptions = {}): Notice | null {
  const fallback = defaultNotice(event, options);
  const template = options.templates?.[event.type] as Template<typeof event.type> | undefined;
  return template ? template(event as never, fallback) : fallback;
}

function defaultNotice(event: ReleaseEvent, o: RenderOptions): Notice | null {
  const service = o.service ?? 'CodeGraph';
  const base = { runId: event.runId, environment: event.environment, time: event.time };
  switch (event.type) {
    case 'run.started': {
      const resumed = event.resumed ? ' (resumed after a crash)' : '';
      if (event.kind === 'release') {
        return {
          ...base,
          kind: 'release.started',
          severity: 'P3',
          tone: 'info',
          title: `🚀 Release ${event.version} started in ${event.environment}${resumed}`,
          text: `Releasing ${service} ${event.version}${event.from ? ` to replace ${event.from}` : ''} in ${event.environment}.`,
          fields: compact([
            ['Version', event.version],
            ['Serving', event.from],
            ['Reason', event.reason],
            ['Started', event.time],
          ]),
        };
      }
      const what = event.kind === 'rollback' ? 'emergency rollback' : 'recovery';
      return {
        ...base,
        kind: 'incident.opened',
        severity: 'P0',
        tone: 'critical',
        title: `🚨 P0 INCIDENT: ${service} ${event.environment} ${what} to ${event.version}${resumed}`,
        text: `An ${what} of ${service} in ${event.environment} to ${event.version} is under way.`,
        fields: compact([
          ['Status', `Investigating: ${what} in progress`],
          [
            'Impact',
            o.impact ??
              `Release${event.from ? ` of ${event.from}` : ''} rolled back in ${event.environment}; service may be degraded`,
          ],
          ['Started', event.time],
          ['Duration', 'just started'],
        ]),
        list: {
          title: 'Actions Taken',
          items: compact([
            ['', `${capitalize(what)} to ${event.version} started`],
            ['Reason: ', event.reason],
            ['', 'Pre-rollback backup, application rollback and verification follow'],
          ]).map((f) => f.label + f.value),
        },
        footer: `Next Update: ${o.nextUpdate ?? 'In 15 minutes'}`,
      };
    }
    case 'traffic.shifted': {
      if (!o.weightChanges) return null;
      const weights = Object.entries(event.weights)
        .map(([pool, weight]) => `${pool} ${weight}%`)
        .join(' · ');
      return {
        ...base,
        kind: 'weight.changed',
        severity: 'P3',
        tone: 'info',
        title: `⚖️ Traffic shifted in ${event.environment}`,
        text: `Traffic now goes ${weights}.`,
        fields: Object.entries(event.weights).map(([pool, weight]) => ({ label: pool, value: `${weight}%` })),
      };
    }
    case 'analysis.finished': {
      if (event.result.verdict !== 'fail' && event.result.verdict !== 'error') return null;
      const measured = event.result.verdict === 'error' ? 'could not measure' : 'failed';
      return {
        ...base,
        kind: 'analysis.failed',
        severity: 'P2',
        tone: 'warning',
        title: `⚠️ Analysis ${event.result.name} ${measured} for ${event.version} in ${event.environment}`,
        text: event.result.reason,
        fields: [
          { label: 'Version', value: event.version },
          { label: 'Analysis', value: event.result.name },
          { label: 'Verdict', value: event.result.verdict },
        ],
        list: { title: 'Failing checks', items: failingChecks(event.result) },
      };
    }
    case 'backup.failed':
      return {
        ...base,
        kind: 'backup.failed',
        severity: 'P2',
        tone: 'warning',
        title: `⚠️ Backup failed in ${event.environment}`,
        text: `${event.provider} could not create a backup: ${event.error.message}`,
        fields: [
          { label: 'Provider', value: event.provider },
          { label: 'Error', value: event.error.code },
        ],
      };
    case 'run.finished':
      return finished(event, base, o, service);
    default:
      return null;
  }
}

function finished(
  event: RunFinishedEvent,
  base: Pick<Notice, 'runId' | 'environment' | 'time'>,
  o: RenderOptions,
  service: string,
): Notice | null {
  const incident: IncidentReport | undefined = event.incident;
  const duration = formatDuration(event.durationMs);
  const reason = incident?.reason ?? event.reason ?? event.error?.message;
  if (event.status === 'superseded') return null;
  if (event.status === 'succeeded' && event.kind === 'release') {
    return {
      ...base,
      kind: 'release.promoted',
      severity: 'P3',
      tone: 'success',
      title: `✅ ${event.version} promoted in ${event.environment}`,
      text: `${service} ${event.version} serves ${event.environment}${event.from ? ` (was ${event.from})` : ''}.`,
      fields: compact([
        ['Version', event.version],
        ['Previous', event.from],
        ['Duration', duration],
        ['Backup', event.backupId],
      ]),
    };
  }
  if (event.status === 'succeeded') {
    return {
      ...base,
      kind: 'incident.resolved',
      severity: incident?.severity ?? 'P0',
      tone: 'success',
      title: `✅ RESOLVED: ${service} ${event.environment} restored to ${event.serving ?? event.version}`,
      text:
        incident?.summary ??
        `${service} ${event.environment} serves ${event.serving ?? event.version} again.`,
      fields: compact([
        ['Status', 'Resolved'],
        ['Root Cause', reason],
        ['Duration', duration],
        ['Backup', incident?.backupId ?? event.backupId],
      ]),
      list: { title: 'Resolution', items: [...(incident?.actions ?? []), ...verifications(incident)] },
      footer: `Post-Incident: ${o.postIncident ?? 'Full post-mortem will be conducted'}`,
    };
  }
  if (event.status === 'rolled-back') {
    return {
      ...base,
      kind: 'release.rolled-back',
      severity: incident?.severity ?? 'P1',
      tone: 'warning',
      title: `↩️ ${event.version} rolled back in ${event.environment}; ${event.serving ?? event.from ?? 'previous version'} serves`,
      text: incident?.summary ?? `The release of ${event.version} failed and was rolled back.`,
      fields: compact([
        ['Status', `Rolled back: ${event.serving ?? event.from ?? 'previous version'} serving, verified`],
        ['Root Cause', reason],
        ['Started', incident?.startedAt],
        ['Duration', duration],
        ['Backup', incident?.backupId ?? event.backupId],
      ]),
      list: { title: 'Actions Taken', items: [...(incident?.actions ?? []), ...verifications(incident)] },
    };
  }
  const severity = incident?.severity ?? 'P0';
  return {
    ...base,
    kind: 'release.failed',
    severity,
    tone: 'critical',
    title: `🚨 ${severity} INCIDENT: ${service} ${event.environment} ${event.kind} of ${event.version} failed`,
    text: incident?.summary ?? `The ${event.kind} could not restore a verified state: a human must look.`,
    fields: compact([
      ['Status', 'Investigating: needs a human'],
      [
        'Impact',
        o.impact ?? `${event.environment} may serve an unverified version (${event.serving ?? 'unknown'})`,
      ],
      ['Root Cause', reason],
      ['Started', incident?.startedAt],
      ['Duration', duration],
    ]),
    list: { title: 'Actions Taken', items: incident?.actions ?? [] },
    footer: `Next Update: ${o.nextUpdate ?? 'In 15 minutes'}`,
  };
}

function failingChecks(result: AnalysisResult): string[] {
  const lines: string[] = [];
  for (const m of result.measurements) {
    if (m.verdict === 'error' && m.error) lines.push(`${m.verifier}: could not measure (${m.error.message})`);
    for (const c of m.checks) {
      if (c.verdict === 'pass') continue;
      const threshold = c.threshold === undefined ? '' : ` (threshold ${String(c.threshold)})`;
      lines.push(`${c.name}: ${c.verdict}, observed ${String(c.observed)}${threshold}: ${c.reason}`);
    }
  }
  return lines;
}

function verifications(incident: IncidentReport | undefined): string[] {
  return (incident?.analyses ?? []).map((a) => `Verification ${a.name}: ${a.verdict} (${a.reason})`);
}

function compact(pairs: Array<[string, string | undefined]>): NoticeField[] {
  return pairs.filter((p): p is [string, string] => !!p[1]).map(([label, value]) => ({ label, value }));
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The notice as plain text in the runbook's layout (title, `Label: value` lines, list, footer). */
export function noticeText(notice: Notice): string {
  const lines = [notice.title, notice.text, ...notice.fields.map((f) => `${f.label}: ${f.value}`)];
  if (notice.list && notice.list.items.length > 0) {
    lines.push(`${notice.list.title}:`, ...notice.list.items.map((item) => `- ${item}`));
  }
  if (notice.footer) lines.push(notice.footer);
  return lines.join('\n');
}
