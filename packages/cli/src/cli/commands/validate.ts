import {
  ConfigInvalidError,
  fromEnv,
  type ValidationChecks,
  type ValidationOptions,
  validateDeployment,
} from '@codegraph/release-core';
import { environmentSecrets, resolveEnvironment } from '../../config/environment.js';
import { loadConfig } from '../../config/load.js';
import { type CommandContext, cliLogger, parse, positionals } from '../context.js';
import { exitCodes } from '../exit.js';

const checkNames = [
  'health',
  'auth',
  'http2',
  'graphql',
  'metrics',
  'latency',
  'concurrency',
  'securityHeaders',
];

function number(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n))
    throw new ConfigInvalidError(`--${flag} must be a number, got ${JSON.stringify(raw)}`);
  return n;
}

/** The validation suite as validate.sh runs it: same variables, every check printed, exit 0 only on pass. */
export async function validate(argv: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals: pos } = parse('validate', argv, {
    'base-url': { type: 'string' },
    'expected-version': { type: 'string' },
    'timeout-secs': { type: 'string' },
    'concurrent-requests': { type: 'string' },
    'max-response-time-ms': { type: 'string' },
    'auth-path': { type: 'string' },
    'load-path': { type: 'string' },
    skip: { type: 'string' },
  });
  positionals('validate', pos, []);
  const { out } = ctx;
  out.addSecrets(environmentSecrets(process.env));
  let base: ValidationOptions = {};
  if (values.config !== undefined || values.env !== undefined) {
    const loaded = await loadConfig(ctx.cwd, values.config);
    const env = await resolveEnvironment(loaded, values.env, { logger: cliLogger(out, values.verbose) });
    out.addSecrets(env.secrets);
    base = env.config.validation ?? {};
  }
  const checks: ValidationChecks = { ...base.checks };
  for (const name of (values.skip ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (!checkNames.includes(name))
      throw new ConfigInvalidError(`--skip ${name}: not a check (${checkNames.join(', ')})`);
    (checks as Record<string, boolean>)[name] = false;
  }
  const flags: ValidationOptions = {};
  if (values['base-url'] !== undefined) flags.baseUrl = values['base-url'];
  if (values['expected-version'] !== undefined) flags.expectedVersion = values['expected-version'];
  if (values['auth-path'] !== undefined) flags.authPath = values['auth-path'];
  if (values['load-path'] !== undefined) flags.loadPath = values['load-path'];
  const t = number('timeout-secs', values['timeout-secs']);
  if (t !== undefined) flags.timeoutSecs = t;
  const c = number('concurrent-requests', values['concurrent-requests']);
  if (c !== undefined) flags.concurrentRequests = c;
  const m = number('max-response-time-ms', values['max-response-time-ms']);
  if (m !== undefined) flags.maxResponseTimeMs = m;
  const options: ValidationOptions = { ...base, ...fromEnv(process.env), ...flags, checks };
  if (options.apiKey) out.addSecrets([options.apiKey]);
  const verbose = options.verbose === true || values.verbose === true;
  if (options.baseUrl) out.line(`validating ${options.baseUrl}`);
  const result = await validateDeployment(options);
  let failed = 0;
  for (const check of result.checks) {
    if (check.verdict !== 'pass') failed++;
    out.json({ type: 'check', ...check });
    const mark =
      check.verdict === 'pass'
        ? out.paint('PASS', 'green')
        : check.verdict === 'fail'
          ? out.paint('FAIL', 'red')
          : out.paint('INCONCLUSIVE', 'yellow');
    out.line(`${mark} ${check.name}: ${check.reason}`);
    if (verbose || check.verdict !== 'pass')
      out.line(
        `     observed ${JSON.stringify(check.observed)}, threshold ${JSON.stringify(check.threshold)}${check.query ? `, ${check.query}` : ''}`,
      );
  }
  const code = result.verdict === 'pass' ? exitCodes.ok : exitCodes.failed;
  out.line(
    `${result.verdict === 'pass' ? out.paint('all checks passed', 'green') : out.paint(`validation ${result.verdict}`, 'red')}: ${result.checks.length} check(s), ${failed} not passed`,
  );
  out.json({
    type: 'result',
    command: 'validate',
    exitCode: code,
    verdict: result.verdict,
    checks: result.checks.length,
    notPassed: failed,
  });
  return code;
}
