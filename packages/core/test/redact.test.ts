import { describe, expect, it } from 'vitest';
import { createRedactor, REDACTED } from '../src/index.js';

describe('redaction', () => {
  it('hides declared secrets wherever they appear, longest first', () => {
    const r = createRedactor(['sk-live-123456', 'sk-live-123456-extra']);
    expect(r.string('key sk-live-123456-extra and sk-live-123456')).toBe(`key ${REDACTED} and ${REDACTED}`);
  });

  it('hides bearer tokens, credentials in URLs and webhook URLs without being told', () => {
    const r = createRedactor();
    expect(r.string('Authorization: Bearer abc.def-ghi')).toBe(`Authorization: Bearer ${REDACTED}`);
    expect(r.string('postgres://admin:hunter22@db:5432/x')).toBe(`postgres://${REDACTED}@db:5432/x`);
    expect(r.string('posting to https://hooks.slack.com/services/T0/B0/XYZ failed')).toBe(
      `posting to ${REDACTED} failed`,
    );
    expect(r.string('https://discord.com/api/webhooks/1/abc')).toBe(REDACTED);
  });

  it('redacts values of secret-named keys in nested objects and leaves the rest alone', () => {
    const r = createRedactor(['tok-999999']);
    const out = r.value({
      apiKey: 'whatever',
      nested: { routing_key: 'R0UT1NG', note: 'has tok-999999 inside', count: 3 },
      list: ['tok-999999'],
      error: new Error('failed with tok-999999'),
    });
    expect(out).toEqual({
      apiKey: REDACTED,
      nested: { routing_key: REDACTED, note: `has ${REDACTED} inside`, count: 3 },
      list: [REDACTED],
      error: { name: 'Error', message: `failed with ${REDACTED}` },
    });
  });

  it('survives circular structures', () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    expect(createRedactor().value(a)).toEqual({ x: 1, self: '[Circular]' });
  });
});

describe('redaction of shared references', () => {
  it('copies an object referenced twice (not a cycle) in full both times', () => {
    const pool = { name: 'v1', replicas: 2 };
    expect(createRedactor().value({ stable: pool, state: { pools: [pool] } })).toEqual({
      stable: pool,
      state: { pools: [pool] },
    });
  });
});
