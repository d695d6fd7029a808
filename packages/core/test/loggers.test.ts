import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import winston from 'winston';
import { createReleaseEngine, fileStore, type LoggerInput, rolling, toLogger } from '../src/index.js';
import { createRedactor } from '../src/kit/index.js';
import { modelTarget } from '../src/testing/index.js';

/** A stream that keeps every JSON line written to it. */
function sink() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, stream };
}

const pinoLogger = () => {
  const s = sink();
  return { ...s, logger: pino({ level: 'debug' }, s.stream) };
};
const winstonLogger = () => {
  const s = sink();
  const logger = winston.createLogger({
    level: 'debug',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: s.stream })],
  });
  return { ...s, logger };
};
/** The message of a line, in the library's own key. */
const msg = (line: Record<string, unknown>) => line.msg ?? line.message;

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe.each([
  ['pino', pinoLogger],
  ['winston', winstonLogger],
] as const)('%s works as the engine logger', (_name, make) => {
  it('keeps the message and every structured field, at the right level', async () => {
    const { logger, lines } = make();
    const log = toLogger(logger as LoggerInput);
    log.info('routed', { weights: { stable: 90, canary: 10 }, pool: 'canary', attempt: 2 });
    log.warn('slow', { ms: 1200 });
    log.debug('detail', { nested: { a: [1, 2] } });
    log.error('failed', { code: 'CG_TARGET_FAILED' });
    await new Promise((r) => setImmediate(r));
    expect(lines.map(msg)).toEqual(['routed', 'slow', 'detail', 'failed']);
    expect(lines[0]).toMatchObject({ weights: { stable: 90, canary: 10 }, pool: 'canary', attempt: 2 });
    expect(lines[1]).toMatchObject({ ms: 1200 });
    expect(lines[2]).toMatchObject({ nested: { a: [1, 2] } });
    expect(lines[3]).toMatchObject({ code: 'CG_TARGET_FAILED' });
  });

  it("child loggers carry their bindings in every line, through the library's own child()", async () => {
    const { logger, lines } = make();
    const child = toLogger(logger as LoggerInput).child?.({ plugin: 'nginx' });
    child?.info('reloaded', { generation: 'k3x9' });
    child?.child?.({ pool: 'canary' }).warn('drained', { ms: 5 });
    await new Promise((r) => setImmediate(r));
    expect(lines[0]).toMatchObject({ plugin: 'nginx', generation: 'k3x9' });
    expect(msg(lines[0]!)).toBe('reloaded');
    expect(lines[1]).toMatchObject({ plugin: 'nginx', pool: 'canary', ms: 5 });
  });

  it('redacts secrets in messages and fields before the library sees them', async () => {
    const { logger, lines } = make();
    const log = toLogger(logger as LoggerInput, createRedactor(['s3cr3t-value']));
    log.info('token s3cr3t-value used', { header: 'Authorization: Bearer abc.def.ghi', apiKey: 'k-1234' });
    await new Promise((r) => setImmediate(r));
    const text = JSON.stringify(lines);
    expect(text).not.toContain('s3cr3t-value');
    expect(text).not.toContain('abc.def.ghi');
    expect(text).not.toContain('k-1234');
  });

  it('is accepted as createReleaseEngine({ logger }) and receives the run with its fields', async () => {
    const { logger, lines } = make();
    const dir = await mkdtemp(join(tmpdir(), 'cg-loggers-'));
    dirs.push(dir);
    const engine = createReleaseEngine({
      environment: 'logs',
      target: modelTarget(),
      strategy: rolling(),
      store: fileStore({ dir }),
      metrics: false,
      logger,
    });
    // A listener that throws is logged with the error as a structured field.
    engine.on('run.started', () => {
      throw new Error('listener boom');
    });
    const result = await engine.release({ version: 'v1' });
    await engine.close?.();
    expect(result.status).toBe('succeeded');
    await new Promise((r) => setImmediate(r));
    const messages = lines.map((l) => String(msg(l)));
    expect(messages.some((m) => m.includes('provision'))).toBe(true);
    // Nothing arrives as "[object Object]" or with its fields lost in the message.
    expect(messages.every((m) => !m.includes('[object Object]'))).toBe(true);
    const warned = lines.find((l) => String(msg(l)).includes('no verifiers configured'));
    expect(warned?.level === 'warn' || warned?.level === 40).toBe(true);
    const threw = lines.find((l) => String(msg(l)) === 'an event listener threw');
    expect(threw?.error).toContain('listener boom');
  });
});
