// A client of the platform service, as a deploy bot would be: it starts the service, follows its
// Server-Sent Events, releases staging and production at the same time, reads status and a report,
// and stops the service with SIGTERM. Exit code 0 when everything happened as expected.
//
//   npm run build && node examples/platform-service/client.mjs
//
// Round 1: staging v1 and production v1 at once (both succeed).
// Round 2: staging v2 (good) and production v3 (answers half its searches with 500) at once: staging
// serves v2, production's canary fails its analysis and production is rolled back to v1. A second
// release of staging while its run is going is refused with 409.
// Round 3, through the pipeline staging -> production: v3 stops at staging (rolled back) and never
// reaches production; v4 passes staging, waits for its soak and an approval (alice; a second one of
// hers is refused), then production's canary takes it. One HTML page shows the whole pipeline.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const server = fileURLToPath(new URL('./server.mjs', import.meta.url));
const say = (line) => process.stdout.write(`${line}\n`);
let failures = 0;
const check = (ok, what) => {
  say(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
};

const child = spawn(
  process.execPath,
  [server, '--port', '0', '--faults', JSON.stringify({ v3: { FAULT_ERROR_RATE: '0.5' } })],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
const serverLines = [];
const listening = new Promise((resolve, reject) => {
  let buffer = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    buffer += chunk;
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const line = JSON.parse(buffer.slice(0, i));
      buffer = buffer.slice(i + 1);
      serverLines.push(line);
      if (line.event === 'listening') resolve(line.url);
    }
  });
  exited.then((code) => reject(new Error(`the platform service exited (${code}) before listening`)));
});

/** Follows the service's event stream; `until(predicate)` waits for a matching event. */
function follow(url) {
  const events = [];
  const waiters = new Set();
  const controller = new AbortController();
  const done = (async () => {
    const res = await fetch(url, { signal: controller.signal });
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('\n');
        if (!data) continue;
        events.push(JSON.parse(data));
        for (const w of waiters) w();
      }
    }
  })().catch((err) => {
    if (!controller.signal.aborted) throw err;
  });
  return {
    events,
    done,
    close: () => controller.abort(),
    until(predicate, what, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(test);
          reject(new Error(`no ${what} within ${timeoutMs} ms`));
        }, timeoutMs);
        const test = () => {
          const hit = events.find(predicate);
          if (!hit) return;
          clearTimeout(timer);
          waiters.delete(test);
          resolve(hit);
        };
        waiters.add(test);
        test();
      });
    },
  };
}

async function api(base, method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return {
    status: res.status,
    body: res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : text,
  };
}

let stream;
try {
  const base = await listening;
  say(`platform service at ${base}`);
  stream = follow(`${base}/events`);
  const reportOf = (runId) =>
    stream.until((e) => e.type === 'report.written' && e.runId === runId, `report of ${runId}`);

  const round = async (releases) => {
    const started = await Promise.all(
      releases.map(([env, version]) => api(base, 'POST', `/environments/${env}/releases`, { version })),
    );
    for (const [i, r] of started.entries())
      check(r.status === 202, `POST ${releases[i][0]} ${releases[i][1]} -> ${r.status}`);
    return started.map((r) => r.body.runId);
  };

  const [staging1, production1] = await round([
    ['staging', 'v1'],
    ['production', 'v1'],
  ]);
  await Promise.all([reportOf(staging1), reportOf(production1)]);

  const [staging2, production3] = await round([
    ['staging', 'v2'],
    ['production', 'v3'],
  ]);
  const busy = await api(base, 'POST', '/environments/staging/releases', { version: 'v9' });
  check(busy.status === 409, `a second staging release while one runs is refused (${busy.status})`);
  const [s2, p3] = await Promise.all([reportOf(staging2), reportOf(production3)]);
  check(s2.status === 'succeeded', `staging v2 ${s2.status}`);
  check(p3.status === 'rolled-back', `production v3 ${p3.status}`);

  // Both environments ran at the same time: their runs overlap on the event stream.
  const span = (runId) => {
    const times = stream.events.filter((e) => e.runId === runId && e.time).map((e) => Date.parse(e.time));
    return [Math.min(...times), Math.max(...times)];
  };
  const [a, b] = [span(staging2), span(production3)];
  check(
    a[0] < b[1] && b[0] < a[1],
    `staging and production released concurrently (${a.map((t) => t % 100000)} and ${b.map((t) => t % 100000)})`,
  );
  const shifts = stream.events.filter((e) => e.type === 'traffic.shifted' && e.runId === production3);
  check(
    shifts.map((e) => JSON.stringify(e.weights)).join(' ') === '{"v1":80,"v3":20} {"v1":100}',
    `production v3 took 20 % and went back to v1 (${shifts.map((e) => JSON.stringify(e.weights)).join(' ')})`,
  );
  const fails = stream.events.filter(
    (e) => e.type === 'analysis.finished' && e.runId === production3 && e.result.verdict === 'fail',
  );
  check(fails.length === 1, `production v3's canary analysis failed: ${fails[0]?.result.reason ?? 'no'}`);

  const envs = await api(base, 'GET', '/environments');
  const serving = Object.fromEntries(envs.body.map((e) => [e.environment, e.serving]));
  check(serving.staging === 'v2' && serving.production === 'v1', `serving ${JSON.stringify(serving)}`);
  const production = await api(base, 'GET', '/environments/production');
  check(
    production.body.last?.status === 'rolled-back',
    `production's last run ${production.body.last?.status}`,
  );
  const report = await api(base, 'GET', p3.html);
  check(
    report.status === 200 &&
      report.body.includes('data-chart="traffic-weight"') &&
      report.body.includes('rolled-back'),
    `report ${p3.html} (${report.status}, ${report.body.length} bytes)`,
  );
  const unknown = await api(base, 'POST', '/environments/qa/releases', { version: 'v1' });
  check(unknown.status === 404, `an unknown environment is 404 (${unknown.status})`);

  // Round 3: the pipeline.
  const finished = (version) =>
    stream.until(
      (e) => e.type === 'pipeline.finished' && e.version === version,
      `pipeline ${version}`,
      120_000,
    );
  const bad = await api(base, 'POST', '/pipelines/main/promotions', { version: 'v3' });
  check(bad.status === 202, `POST pipeline v3 -> ${bad.status}`);
  const v3 = await finished('v3');
  check(
    v3.status === 'rolled-back' && v3.reached === undefined,
    `pipeline v3 stopped at staging (${v3.status})`,
  );
  const good = await api(base, 'POST', '/pipelines/main/promotions', { version: 'v4' });
  check(good.status === 202, `POST pipeline v4 -> ${good.status}`);
  await stream.until(
    (e) =>
      e.type === 'pipeline.waiting' &&
      e.stage === 'production' &&
      e.waitingFor.some((w) => w.gate === 'approval'),
    'production waiting for approval',
  );
  const waiting = await api(base, 'GET', '/pipelines/main');
  const prod = waiting.body.stages.find((s) => s.stage === 'production');
  check(
    prod.state === 'waiting' && prod.serving === 'v1',
    `production waits (${prod.waitingFor.map((w) => w.detail).join('; ')}) and serves ${prod.serving}`,
  );
  const alice = await api(base, 'POST', '/pipelines/main/approvals', {
    stage: 'production',
    version: 'v4',
    by: 'alice',
  });
  check(alice.status === 200, `alice approves production@v4 (${alice.body.message})`);
  const again = await api(base, 'POST', '/pipelines/main/approvals', {
    stage: 'production',
    version: 'v4',
    by: 'alice',
  });
  check(again.status === 409, `alice cannot approve twice (${again.body.message})`);
  const v4 = await finished('v4');
  check(
    v4.status === 'succeeded' && v4.reached === 'production',
    `pipeline v4 reached production (${v4.status})`,
  );
  const after = await api(base, 'GET', '/environments');
  const servingNow = Object.fromEntries(after.body.map((e) => [e.environment, e.serving]));
  check(
    servingNow.staging === 'v4' && servingNow.production === 'v4',
    `serving ${JSON.stringify(servingNow)}`,
  );
  const page = await api(base, 'GET', '/reports/pipeline-main.html');
  check(
    page.status === 200 &&
      page.body.includes('<h2>production') &&
      page.body.includes('alice approved production'),
    `pipeline report (${page.status}, ${page.body.length} bytes)`,
  );
  const metrics = await api(base, 'GET', '/metrics');
  const runs = String(metrics.body).match(
    /^codegraph_release_runs_total\{[^}]*environment="production"[^}]*\} (\d+)/m,
  );
  check(
    metrics.status === 200 && Number(runs?.[1]) >= 1,
    `metrics scraped (${runs?.[0] ?? 'no runs_total'})`,
  );
} catch (err) {
  check(false, err.message);
} finally {
  stream?.close();
  await stream?.done;
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await exited;
  clearTimeout(timer);
  check(code === 0, `the service stopped on SIGTERM (exit ${code})`);
  check(serverLines.at(-1)?.event === 'stopped', 'the service stopped its replicas and proxies');
}
say(failures === 0 ? 'platform-service: all checks passed' : `platform-service: ${failures} check(s) failed`);
process.exitCode = failures === 0 ? 0 : 1;
