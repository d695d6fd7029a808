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

${common}

${exitCodeHelp}

Errors are one line on stderr: "codegraph-release: CG_CODE: what happened and what to do".
See docs/operations.md for every code.`;

export const commandHelp: Record<string, string> = {
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

Approves the current pause of the deploy running in the environment (its process watches
<stateDir>/control/<env>/). With --full the strategy skips its remaining steps.
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
  backup restore (--id <id> | --at <ISO time>) --confirm CONFIRM  (stop the service first)
  backup prune [--keep-last <n>] [--max-age <30d|12h|90m>]

Uses the environment's \`backup\` provider. A missing provider or a provider without prune is exit 2.

${common}`,
};
