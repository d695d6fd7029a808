// Help texts. Keep them in step with docs/operations.md.

export const exitCodeHelp = `Exit codes:
  0    succeeded: released and verified, every check passed, backup verified
  1    did not succeed but the environment is safe: rolled back, a check failed, a backup is corrupt
  2    bad arguments or configuration (CG_CONFIG_INVALID, CG_ROLLBACK_UNCONFIRMED, CG_CAPABILITY_MISSING); nothing changed
  3    the environment is locked (CG_ENVIRONMENT_LOCKED) or an interrupted run waits (CG_RUN_INTERRUPTED)
  4    not found: version (CG_VERSION_UNKNOWN), run (CG_RUN_NOT_FOUND), backup (CG_BACKUP_NOT_FOUND)
  5    failed without a verified state, or the target, store or a plugin failed: a human must look
  130  stopped by a second Ctrl-C before the undo finished`;

const common = `Common options:
  -c, --config <file>   release.config.{ts,js,json} (default: the one in the working directory)
  -e, --env <name>      the environment (default: defaultEnvironment, or the only one)
      --json            one JSON value per line: each event, then {"type":"result",...} or {"type":"error",...}
  -v, --verbose         engine log lines on stderr (secrets redacted)
      --metrics-port <port>     serve the engine's metrics at http://127.0.0.1:<port>/metrics while the command runs (0: a free port)
      --metrics-linger <secs>   keep /metrics up this long after the command ends, for a last scrape (default 5)
      --pushgateway <url>       push the final metrics to a Prometheus Pushgateway (job codegraph-release, grouped by environment)
  -h, --help            this help`;

export const mainHelp = `codegraph-release: release, verify, roll back and back up CodeGraph

Usage: codegraph-release <command> [options]

Commands:
  validate                     run the deployment validation suite (drop-in for validate.sh)
  plan <version>               the actions a deploy would take, without doing anything
  deploy <version>             release a version: preflight, backup, deploy, verify; undone on failure
  promote [runId]              approve the pause of the running deploy (--full: skip remaining steps)
  abort [runId]                abort the running deploy: it is undone and ends rolled-back
  rollback --to <version> --confirm CONFIRM --reason <text>
                               the runbook's emergency rollback
  resume <runId>               continue a run whose process died
  status                       what serves, pools and weights, the lock, interrupted runs
  history                      finished runs of the environment
  backup create|list|verify|restore|prune
                               the environment's backups
  recover --backup <id> | --at <time> --confirm CONFIRM
                               the runbook's recovery: stop, restore, start, verify
  promote-pipeline <version>   promote through the configured pipeline's stages (soak, windows, approvals)
  pipeline status|plan|approve|resume|report
                               where a pipeline stands, its plan, approve a stage, continue it, its HTML page

${common}

${exitCodeHelp}

Errors are one line on stderr: "codegraph-release: CG_CODE: what happened and what to do".
Every code: https://github.com/codegraph/codegraph-release-sdk/blob/main/docs/operations.md`;

export const commandHelp: Record<string, string> = {
  'promote-pipeline': `Usage: codegraph-release promote-pipeline <version> [-p <pipeline>] [--reason <text>] [--report <file>]

Promotes <version> through the stages of a pipeline of release.config.ts (\`pipelines\`), in order.
Before each stage it waits for the soak in the previous stage, a promotion window, and approvals;
it stops at the first stage that does not succeed (that stage's engine has rolled it back).
A killed or interrupted process is continued by running the same command again (or pipeline resume).
Writes the pipeline's HTML page (default <stateDir>/reports/pipeline-<runId>.html).
Exit 0 when the version reached the last stage, 1 when a stage was rolled back, 5 when it failed.

${common}`,
  pipeline: `Usage: codegraph-release pipeline <status|plan <version>|approve <stage> <version>|resume|report> [-p <pipeline>]

  status                     per stage: the version serving, what the next promotion waits for, until when
  plan <version>             when each stage could start at the earliest, and each stage's exposure
  approve <stage> <version>  approve a stage for the running pipeline (from any host that sees its store);
                             --by <identity> (default $CODEGRAPH_RELEASE_APPROVER, else the user name),
                             --timeout-ms <n> (default 30000). Exit 0 approved, 1 refused, 4 nobody answered
  resume                     continue the pipeline's interrupted run
  report [--out <file>]      write the pipeline's HTML page

${common}`,
  validate: `Usage: codegraph-release validate [options]

Runs the deployment validation suite once and prints each check. Exit 0 when every check
passes, 1 otherwise, 2 on bad settings. The same environment variables as validate.sh:
  BASE_URL, TIMEOUT_SECS, CONCURRENT_REQUESTS, MAX_RESPONSE_TIME_MS, VERBOSE, API_KEY
With --env (or --config) the environment's \`validation\` settings are the base; variables and
flags win over them.

Options:
      --base-url <url>              overrides BASE_URL
      --expected-version <v>        /health must report this version
      --timeout-secs <n>            overrides TIMEOUT_SECS
      --concurrent-requests <n>     overrides CONCURRENT_REQUESTS
      --max-response-time-ms <n>    overrides MAX_RESPONSE_TIME_MS
      --auth-path <path>            an endpoint that needs the API key (default /stats/rocksdb)
      --load-path <path>            the endpoint timed by the latency and load checks (default /health)
      --skip <check,...>            health, auth, http2, graphql, metrics, latency, concurrency, securityHeaders

${common}`,
  plan: `Usage: codegraph-release plan <version> [--strategy <name>] [options]

Prints the actions \`deploy <version>\` would take, computed from where the target stands.
Nothing is changed. Exit 0, or 2 on a bad version or config.

${common}`,
  deploy: `Usage: codegraph-release deploy <version> [options]

Releases <version>: preflight, backup, deploy (the strategy's steps), verify. A failed analysis
or verification undoes the release and verifies the previous version (exit 1).
Ctrl-C (SIGINT/SIGTERM) aborts: the release is undone; a second Ctrl-C exits at once (130).
While it runs, \`codegraph-release promote\` / \`abort\` in another shell act on it.

Options:
      --strategy <name>     one of the environment's strategies (the workflow's deployment_strategy)
      --reason <text>       recorded in the journal and notifications
      --label <key=value>   stored with the run (repeatable)
      --report <dir>        write the release report (HTML + Markdown) into <dir>
      --timeout <duration>  abort the run (it is undone, exit 1) once it has taken this long,
                            e.g. 30m or 1h30m

Every analysis measurement is printed as it is taken (\`measured <gate> #<n> <check>: value
(limit, n=samples) verdict\`; with --json each is an \`analysis.measured\` event).

${common}`,
  promote: `Usage: codegraph-release promote [runId] [--full] [--timeout-ms <n>] [options]

Approves the current pause of the deploy running in the environment, through the environment's
store (any host that reaches it). With --full the strategy skips its remaining steps.
Exit 0 when the deploy applied it, 4 when no deploy runs, 5 when it did not answer in time.

${common}`,
  abort: `Usage: codegraph-release abort [runId] [--reason <text>] [--timeout-ms <n>] [options]

Aborts the deploy running in the environment: it is undone as if an analysis had failed, and
that deploy exits 1 (rolled back). Exit 0 when the deploy took the request, 4 when none runs.

${common}`,
  rollback: `Usage: codegraph-release rollback --to <version> --confirm CONFIRM --reason <text> [options]

The runbook's emergency rollback: validation, backup, database rollback, application rollback,
verification, notification. Refused before anything changes without --confirm CONFIRM (exactly,
exit 2, CG_ROLLBACK_UNCONFIRMED) or when <version> is not known as released and good (exit 4).

Options:
      --to <version>      a version the history knows as good (see \`history\`)
      --confirm CONFIRM   required, exactly
      --reason <text>     required, for the incident report
      --report <dir>      write the incident's report (HTML + Markdown) into <dir>

${common}`,
  resume: `Usage: codegraph-release resume <runId> [options]

Continues a run whose process died, from its journal (\`status\` lists interrupted runs).
A finished run prints its result again. Exit codes as for deploy; 4 for an unknown run.

${common}`,
  status: `Usage: codegraph-release status [--watch [--interval <duration>] [--timeout <duration>]] [options]

The version serving, each pool (version, replicas ready, weight), who holds the lock,
interrupted runs and the last run.

With --watch, follows the running run (else the last one) from another shell: its journal is
read from the store every --interval (default 1s) and each step and measurement printed as it
appears, until the run finishes (exit code of its status: 0, 1 or 5) or --timeout passes
(default 1h; exit 3, the run still holds the environment).

${common}`,
  history: `Usage: codegraph-release history [--limit <n>] [options]

Finished runs of the environment, newest last: kind, version, status, serving, verdicts.

${common}`,
  backup: `Usage: codegraph-release backup <create|list|verify|restore|prune> [options]

  backup create [--reason manual|scheduled] [--label key=value]
  backup list
  backup verify <id> | --all [--level presence|checksum|scan]   exit 1 if any is corrupt
  backup restore (--id <id> | --at <ISO time>) --confirm CONFIRM [--reason <text>] [--version <v>]
                 while the service runs on the data: the same recovery as \`recover\`;
                 when nothing serves: a direct restore under the environment's lock
  backup prune [--keep-last <n>] [--max-age <30d|12h|90m>]

Uses the environment's \`backup\` provider. A missing provider or a provider without prune is exit 2.
A run holding the environment's lock makes \`backup restore\` exit 3 with nothing changed.

${common}`,
  recover: `Usage: codegraph-release recover (--backup <id> | --at <ISO time>) --confirm CONFIRM [options]

The runbook's recovery through the engine: take the environment's lock, journal every step,
stop the service, move the current data aside (<dir>.pre-recovery.<time>, never deleted),
restore the backup (checked file by file), start, verify, check the backup's integrity, and
report the incident. A killed recovery continues with \`resume <runId>\`.
Refused before anything changes without --confirm CONFIRM (exit 2, CG_RECOVERY_UNCONFIRMED),
for an unknown backup (exit 4), and while another run holds the lock (exit 3).

Options:
      --backup <id>       the backup to restore (see \`backup list\`)
      --at <ISO time>     or the newest backup taken at or before this time
      --confirm CONFIRM   required, exactly
      --reason <text>     for the incident report (default: names the backup)
      --version <v>       the version to start (default: the serving one, else the backup's)
      --report <dir>      write the incident's report (HTML + Markdown) into <dir>

${common}`,
};
