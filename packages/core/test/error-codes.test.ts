import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as core from '../src/index.js';
import {
  type ConfigInvalidError,
  type ErrorCode,
  errorCodes,
  LockLostError,
  ReleaseError,
} from '../src/index.js';

const documented = () => {
  const text = readFileSync(join(__dirname, '../../../docs/operations.md'), 'utf8');
  const table = text.slice(
    text.indexOf('## Error codes'),
    text.indexOf('\n## ', text.indexOf('## Error codes') + 1),
  );
  const codes = new Set<string>();
  for (const line of table.split('\n')) {
    if (!line.startsWith('| `CG_')) continue;
    const first = line.split('|')[1] ?? '';
    for (const m of first.matchAll(/`(CG_[A-Z_]+)`/g)) codes.add(m[1]!);
  }
  return codes;
};

/** Every error class core exports, with its static code. */
const classes = () =>
  Object.values(core).filter(
    (v): v is typeof ReleaseError =>
      typeof v === 'function' &&
      (v === ReleaseError || Object.prototype.isPrototypeOf.call(ReleaseError.prototype, v.prototype)),
  );

describe('error codes', () => {
  it('every documented code exists, and every code is documented', () => {
    expect([...documented()].sort()).toEqual([...errorCodes].sort());
  });

  it('every error class has its own code, from the list', () => {
    const seen = new Map<string, string>();
    for (const cls of classes()) {
      expect(errorCodes).toContain(cls.code);
      expect(seen.get(cls.code), `${cls.name} and ${seen.get(cls.code)} share ${cls.code}`).toBeUndefined();
      seen.set(cls.code, cls.name);
      expect(new cls('x').code).toBe(cls.code);
    }
    expect(seen.size).toBe(errorCodes.length);
  });

  it('a class declares its code as a literal, so switch (err.code) narrows', () => {
    expectTypeOf<ConfigInvalidError['code']>().toEqualTypeOf<'CG_CONFIG_INVALID'>();
    expectTypeOf<LockLostError['code']>().toEqualTypeOf<'CG_LOCK_LOST'>();
    expectTypeOf<ReleaseError['code']>().toEqualTypeOf<ErrorCode>();
    const describeCode = (err: ReleaseError): string => {
      switch (err.code) {
        case 'CG_LOCK_LOST':
          return 'resume from the new holder';
        default:
          return err.code;
      }
    };
    expect(describeCode(new LockLostError('lost'))).toBe('resume from the new holder');
  });
});
