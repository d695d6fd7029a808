import { ConfigInvalidError } from './errors.js';
import type { Action } from './strategies/types.js';

/**
 * The limits every package checks names, versions, weights and replica counts against. One place, so
 * a release the engine accepts is one every target accepts too.
 *
 * @example
 * ```ts
 * import { rules } from '@codegraph/release-core'
 * if (version.length > rules.versionMaxLength) throw new Error('version too long')
 * ```
 */
export const rules = Object.freeze({
  /** Environments, run ids, plugin names. */
  identifierMaxLength: 128,
  /** A version must fit in a pool name after the longest prefix a strategy adds (`baseline-`). */
  versionMaxLength: 48,
  /** Pool names end up in nginx upstream names, file names and metric labels (a DNS label's 63). */
  poolNameMaxLength: 63,
  /** Replicas of one pool. */
  replicasMax: 64,
  /** Weights are whole percentages that add up to this (or an empty map: maintenance). */
  weightTotal: 100,
  /** Free text a plugin or user passes along (reasons, analysis names): one line, at most this long. */
  textMaxLength: 1024,
  /** The longest pause a strategy may ask for, in milliseconds (30 days). */
  pauseMaxMs: 30 * 24 * 3_600_000,
});

const identifierPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const versionPattern = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const poolPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Who checks: named in the error so the caller knows which plugin refused. */
export interface RuleContext {
  plugin?: string | undefined;
}

function refuse(message: string, ctx: RuleContext | undefined): never {
  throw new ConfigInvalidError(message, ctx?.plugin ? { plugin: ctx.plugin } : {});
}

/**
 * Checks an identifier (environment, run id, plugin name): letters, digits, `.`, `_`, `-`, not
 * starting with a symbol, at most {@link rules.identifierMaxLength} characters.
 *
 * @example
 * ```ts
 * checkIdentifier('production', 'environment') // 'production'
 * checkIdentifier('../etc', 'environment')     // throws CG_CONFIG_INVALID
 * ```
 */
export function checkIdentifier(value: unknown, what = 'identifier', ctx?: RuleContext): string {
  if (
    typeof value !== 'string' ||
    value.length > rules.identifierMaxLength ||
    !identifierPattern.test(value)
  ) {
    refuse(
      `${what} ${show(value)} is not valid: use 1-${rules.identifierMaxLength} letters, digits, '.', '_' or '-', not starting with a symbol`,
      ctx,
    );
  }
  return value;
}

/**
 * Checks a version: like an identifier plus `+` for build metadata, at most
 * {@link rules.versionMaxLength} characters so every strategy's pool name for it stays valid.
 *
 * @example
 * ```ts
 * checkVersion('v1.2.3+build.7') // 'v1.2.3+build.7'
 * ```
 */
export function checkVersion(value: unknown, what = 'version', ctx?: RuleContext): string {
  if (typeof value !== 'string' || value.length > rules.versionMaxLength || !versionPattern.test(value)) {
    refuse(
      `${what} ${show(value)} is not valid: use 1-${rules.versionMaxLength} letters, digits, '.', '_', '+' or '-', e.g. "v1.2.3"`,
      ctx,
    );
  }
  return value;
}

/**
 * Checks a pool name: letters, digits, `.`, `_`, `-`, at most {@link rules.poolNameMaxLength} characters.
 *
 * @example
 * ```ts
 * checkPoolName('canary-v1.2.3') // 'canary-v1.2.3'
 * ```
 */
export function checkPoolName(value: unknown, what = 'pool name', ctx?: RuleContext): string {
  if (typeof value !== 'string' || value.length > rules.poolNameMaxLength || !poolPattern.test(value)) {
    refuse(
      `${what} ${show(value)} is not valid: use 1-${rules.poolNameMaxLength} letters, digits, '.', '_' or '-', not starting with a symbol`,
      ctx,
    );
  }
  return value;
}

/**
 * Checks a replica count: an integer from `min` (default 1; a target may allow 0 to scale a pool
 * down) to {@link rules.replicasMax}.
 *
 * @example
 * ```ts
 * checkReplicas(3) // 3
 * ```
 */
export function checkReplicas(
  value: unknown,
  what = 'replicas',
  ctx?: RuleContext & { min?: number },
): number {
  const min = ctx?.min ?? 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > rules.replicasMax) {
    refuse(`${what} must be an integer from ${min} to ${rules.replicasMax}, got ${show(value)}`, ctx);
  }
  return value;
}

/**
 * Checks a weight map: valid pool names to whole percentages 0-100 adding up to
 * {@link rules.weightTotal}; an empty map means maintenance (no pool takes traffic).
 *
 * @example
 * ```ts
 * checkWeights({ stable: 95, canary: 5 })
 * checkWeights({}) // maintenance
 * ```
 */
export function checkWeights(value: unknown, what = 'weights', ctx?: RuleContext): Record<string, number> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    refuse(`${what} must be an object of pool name to percentage, got ${show(value)}`, ctx);
  }
  const entries = Object.entries(value as Record<string, unknown>);
  let total = 0;
  for (const [pool, weight] of entries) {
    checkPoolName(pool, `${what}: pool`, ctx);
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > rules.weightTotal) {
      refuse(`${what}: ${pool} must be a whole percentage 0-${rules.weightTotal}, got ${show(weight)}`, ctx);
    }
    total += weight;
  }
  if (entries.length > 0 && total !== rules.weightTotal) {
    refuse(`${what} must add up to ${rules.weightTotal} (or be {} for maintenance), got ${total}`, ctx);
  }
  return value as Record<string, number>;
}

/**
 * Checks one line of free text (a reason, an analysis name): a string of 1 to `max` characters
 * (default {@link rules.textMaxLength}) with no control characters, so it cannot forge a log line or
 * break the config file, report or message it ends up in.
 *
 * @example
 * ```ts
 * checkText('p95 doubled', 'reason')     // 'p95 doubled'
 * checkText('ok\nFAKE LOG', 'reason')    // throws CG_CONFIG_INVALID
 * ```
 */
export function checkText(value: unknown, what = 'text', ctx?: RuleContext & { max?: number }): string {
  const max = ctx?.max ?? rules.textMaxLength;
  if (typeof value !== 'string' || value.length === 0 || value.length > max || hasControl(value)) {
    refuse(
      `${what} ${show(value)} is not valid: use 1-${max} characters on one line, no control characters`,
      ctx,
    );
  }
  return value;
}

/** Whether a text holds a control character (C0, DEL, C1) or a Unicode line or paragraph separator. */
export function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) return true;
  }
  return false;
}

const actionTypes = new Set(['provision', 'route', 'analyze', 'pause', 'promote', 'retire']);

/**
 * Checks an action a strategy yielded before any target sees it: a known type, valid pool names and
 * version, a replica count from 0 to {@link rules.replicasMax}, weights that add up to 100 (or `{}`
 * for maintenance), a bounded pause. The engine calls it for every action; `testStrategy` too.
 *
 * @example
 * ```ts
 * checkAction({ type: 'route', weights: { stable: 90, canary: 10 } }, { plugin: 'canary' })
 * checkAction({ type: 'route', weights: { stable: 90 } }) // throws CG_CONFIG_INVALID: adds up to 90
 * ```
 */
export function checkAction(value: unknown, ctx?: RuleContext): Action {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    refuse(`an action must be an object like { type: 'route', weights }, got ${show(value)}`, ctx);
  }
  const a = value as Record<string, unknown>;
  if (typeof a.type !== 'string' || !actionTypes.has(a.type)) {
    refuse(`action type ${show(a.type)} is not one of ${[...actionTypes].join(', ')}`, ctx);
  }
  const what = `${a.type} action`;
  switch (a.type) {
    case 'provision':
      checkPoolName(a.pool, `${what}: pool`, ctx);
      checkVersion(a.version, `${what}: version`, ctx);
      checkReplicas(a.replicas, `${what}: replicas`, { ...ctx, min: 0 });
      break;
    case 'route':
      checkWeights(a.weights, `${what}: weights`, ctx);
      break;
    case 'analyze':
      checkText(a.name, `${what}: name`, { ...ctx, max: rules.identifierMaxLength });
      if (a.pools !== undefined) {
        if (!Array.isArray(a.pools)) refuse(`${what}: pools must be an array of pool names`, ctx);
        for (const pool of a.pools) checkPoolName(pool, `${what}: pool`, ctx);
      }
      if (a.verifiers !== undefined) {
        if (!Array.isArray(a.verifiers)) refuse(`${what}: verifiers must be an array of names`, ctx);
        for (const name of a.verifiers)
          checkText(name, `${what}: verifier`, { ...ctx, max: rules.identifierMaxLength });
      }
      if (a.gate !== undefined && (typeof a.gate !== 'object' || a.gate === null))
        refuse(`${what}: gate must be an object`, ctx);
      break;
    case 'pause':
      if (
        a.durationMs !== undefined &&
        (typeof a.durationMs !== 'number' ||
          !Number.isInteger(a.durationMs) ||
          a.durationMs < 0 ||
          a.durationMs > rules.pauseMaxMs)
      ) {
        refuse(
          `${what}: durationMs must be an integer from 0 to ${rules.pauseMaxMs}, got ${show(a.durationMs)}`,
          ctx,
        );
      }
      if (a.reason !== undefined) checkText(a.reason, `${what}: reason`, ctx);
      break;
    default:
      checkPoolName(a.pool, `${what}: pool`, ctx);
  }
  return value as Action;
}

/** A value for an error message: quoted, control characters escaped, cut to a readable length. */
function show(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
