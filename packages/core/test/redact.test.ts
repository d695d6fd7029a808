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

describe('credentials are redacted by their shape, undeclared', () => {
  const r = createRedactor();
  const cases: Array<[string, string, string]> = [
    // [what, text, secret part that must disappear]
    ['an Authorization header', 'upstream said: Authorization: Token abcdef123456', 'abcdef123456'],
    [
      'a bearer token echoed by an upstream',
      '401 for Bearer eyJraWQiOiJ4In0.eyJzdWIiOiIxIn0.c2lnbmF0dXJl',
      'c2lnbmF0dXJl',
    ],
    [
      'a PagerDuty routing key pasted into a reason',
      'rollback: paging R0ab12cd34ef56ab78cd90ef12ab34cd failed',
      'R0ab12cd34ef56ab78cd90ef12ab34cd',
    ],
    ['a Slack bot token', 'token xoxb-1234567890-0987654321-AbCdEfGhIjKl', 'xoxb-1234567890'],
    ['an AWS access key id', 'creds AKIAIOSFODNN7EXAMPLE in env', 'AKIAIOSFODNN7EXAMPLE'],
    ['an AWS secret key', 'aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'wJalrXUtnFEMI'],
    ['a JWT', 'cookie eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcHMifQ.dGVzdHNpZ25hdHVyZQ', 'eyJzdWIiOiJvcHMifQ'],
    [
      'a password in a query string',
      'GET https://api.example.com/x?user=ops&password=hunter22&y=1',
      'hunter22',
    ],
    [
      'a postgres connection string',
      'connect postgres://release:s3cr3t-pw@db.internal:5432/app',
      's3cr3t-pw',
    ],
    [
      'a GitHub token',
      'push with ghp_abcdefghijklmnopqrstuvwxyz0123456789',
      'ghp_abcdefghijklmnopqrstuvwxyz0123456789',
    ],
    ['a JSON secret field in text', 'body {"api_key": "k-1234567890"}', 'k-1234567890'],
    [
      'a PEM private key',
      '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----',
      'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC',
    ],
  ];
  for (const [what, text, secret] of cases) {
    it(`hides ${what}`, () => {
      const out = r.string(text);
      expect(out).not.toContain(secret);
      expect(out).toContain(REDACTED);
    });
  }

  it('keeps ordinary release text readable', () => {
    for (const text of [
      'release v1.2.3 to production: analysis canary-20 passed (p95 41 ms)',
      'run production-20260302T100000-a1b2c3 finished; backup 20260302T100000Z-9f8e7d',
      'sha256 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b',
    ])
      expect(r.string(text)).toBe(text);
  });

  it('hides a declared secret also URL-encoded and JSON-escaped', () => {
    const secret = 'p@ss/word"1';
    const d = createRedactor([secret]);
    expect(d.string(`q=${encodeURIComponent(secret)} j=${JSON.stringify(secret)}`)).not.toMatch(
      /p%40ss|p@ss/,
    );
  });
});

describe('redaction by shape leaves names alone', () => {
  it('does not take a dotted check name followed by a colon for a secret', () => {
    const text = 'PASS auth.api_key: accepted the API key (200)';
    expect(createRedactor().string(text)).toBe(text);
  });
});

describe('redaction remembered across calls and redactors', () => {
  it('a string seen before by another redactor is still redacted by the secrets of this one', () => {
    const plain = createRedactor();
    const text = 'deploy of v2 failed: upstream said hunter22x';
    expect(plain.string(text)).toBe(text);
    const knowing = createRedactor(['hunter22x']);
    expect(knowing.string(text)).toBe('deploy of v2 failed: upstream said [REDACTED]');
    // A secret learned later applies to strings already seen.
    plain.add('hunter22x');
    expect(plain.string(text)).toBe('deploy of v2 failed: upstream said [REDACTED]');
    // Shapes are found however many times a string comes back.
    for (let i = 0; i < 3; i++)
      expect(plain.string('curl -H "Authorization: Bearer abc.def.ghi"')).not.toContain('abc.def');
  });

  it('stays correct past its memory bound, and for strings too long to remember', () => {
    const r = createRedactor();
    for (let i = 0; i < 20_000; i++)
      expect(r.string(`step ${i} token=s3cr3t${i}`)).toBe(`step ${i} token=[REDACTED]`);
    const long = `${'x'.repeat(5_000)} password=longsecret`;
    expect(r.string(long)).toBe(`${'x'.repeat(5_000)} password=[REDACTED]`);
    expect(r.string(long)).toBe(`${'x'.repeat(5_000)} password=[REDACTED]`);
  });
});
