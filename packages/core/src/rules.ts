import { ConfigInvalidError } from './errors.js';

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

/** A value for an error message: quoted, control characters escaped, cut to a readable length. */
function show(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
