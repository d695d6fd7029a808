// The config the workflows in this folder use: staging on the embedded local target, production through
// nginx, with a RocksDB backup before every release and rollback, and Slack + PagerDuty notifications.
// The strategy names match the workflow's deployment_strategy choice: rolling, blue-green, canary.
// Runs, journals, history, the environment's lock and promote/abort requests live in PostgreSQL
// (DATABASE_URL), so the workflows run on GitHub-hosted runners: no runner keeps state between jobs.
import { adminApiCheckpoint, rocksdbBackup } from '@codegraph/backup-rocksdb';
import { pagerDuty, slack } from '@codegraph/notify';
import { type ConfigContext, defineConfig, type EnvironmentConfig } from '@codegraph/release-cli';
import {
  ConfigInvalidError,
  httpValidation,
  localTarget,
  type ReplicaCommandInput,
  rolling,
} from '@codegraph/release-core';
import { postgresStore } from '@codegraph/store-postgres';
import { blueGreen } from '@codegraph/strategy-bluegreen';
import { canary } from '@codegraph/strategy-canary';
import { nginxTarget } from '@codegraph/target-nginx';

const bin = process.env.CODEGRAPH_BIN_DIR ?? '/opt/codegraph/releases';

/** One replica of a version: the release's binary on the port the target gives it. */
const command = ({ version, port }: ReplicaCommandInput) => ({
  command: `${bin}/${version}/codegraph-api`,
  args: ['--port', String(port)],
  env: { API_KEY: process.env.API_KEY ?? '' },
});

/** A variable only the environment that needs it asks for: staging runs without production's secrets. */
function need(env: ConfigContext['env'], name: string): string {
  const value = env[name];
  if (!value) throw new ConfigInvalidError(`set ${name} (a repository secret in GitHub Actions)`);
  return value;
}

/** The strategies `--strategy` (the workflow's deployment_strategy) picks from; rolling is the default. */
const strategies = {
  canary: canary({
    weights: [10, 25, 50],
    analysis: { verifiers: ['http-validation'], gate: { count: 3, intervalMs: 10_000 } },
  }),
  'blue-green': blueGreen({ scaleDownDelayMs: 60_000 }),
};

/**
 * The shared state: one PostgreSQL database for every runner, shell and host that releases or steers an
 * environment. Its URL holds a password, so it is a secret the CLI redacts.
 */
const store = (env: ConfigContext['env']) => {
  const connectionString = need(env, 'DATABASE_URL');
  return { store: postgresStore({ connectionString }), secret: connectionString };
};

const validation = (env: ConfigContext['env']) =>
  httpValidation({ apiKey: env.API_KEY || undefined, maxResponseTimeMs: 200, concurrentRequests: 50 });

export default defineConfig({
  // Only the targets' working files (replica logs, nginx config) stay on the runner; state is in PostgreSQL.
  stateDir: process.env.CODEGRAPH_STATE_DIR ?? '.codegraph-release',
  defaultEnvironment: 'staging',
  environments: {
    staging: ({ stateDir, env }): EnvironmentConfig => {
      const shared = store(env);
      return {
        store: shared.store,
        target: localTarget({ stateDir: `${stateDir}/staging`, command }),
        strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
        strategies,
        verifiers: [validation(env)],
        replicas: 2,
        secrets: [shared.secret],
      };
    },
    production: ({ stateDir, env }): EnvironmentConfig => {
      const slackUrl = need(env, 'SLACK_WEBHOOK_URL');
      const routingKey = need(env, 'PAGERDUTY_ROUTING_KEY');
      const adminKey = need(env, 'ADMIN_API_KEY');
      const shared = store(env);
      return {
        store: shared.store,
        target: nginxTarget({ stateDir: `${stateDir}/production`, command, nginx: { listenPort: 8080 } }),
        strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
        strategies,
        verifiers: [validation(env)],
        replicas: 3,
        backup: rocksdbBackup({
          repository: '/opt/codegraph/backups',
          db: '/opt/codegraph/data/rocksdb',
          source: adminApiCheckpoint({ url: 'http://127.0.0.1:8000', apiKey: adminKey }),
          extras: { vector: '/opt/codegraph/data/vector', config: '/etc/codegraph' },
        }),
        notifiers: [slack({ webhookUrl: slackUrl }), pagerDuty({ routingKey })],
        secrets: [slackUrl, routingKey, adminKey, shared.secret],
      };
    },
  },
});
