import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  createReleaseEngine,
  fileStore,
  type LocalTarget,
  proxyAnalysis,
  type ReleaseEngine,
  rolling,
  type Verifier,
} from '@codegraph/release-core';
import { Marked } from 'marked';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { LocalHarness, loadGenerator } from '../../core/test/helpers/sample.js';
import {
  type RunRecorder,
  type RunRecording,
  recordRun,
  renderReportHtml,
  renderReportMarkdown,
  writeReport,
} from '../src/report/index.js';

/** Debian's Chromium, installed by `scripts/install-test-deps.sh`. */
const chromiumPath = process.env['CHROMIUM_BIN'] ?? '/usr/bin/chromium';

/** Live processes whose command line mentions `needle` (Chromium's helpers carry its user-data-dir). */
async function processesMentioning(needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(needle)) found.push(pid);
  }
  return found;
}

/**
 * Opens `file` in a real headless Chromium (fresh profile, no background traffic) with one mode flag
 * (`--dump-dom` or `--screenshot=<png>`) and returns stdout; removes the profile, and fails if
 * Chromium left a process behind.
 */
async function chromium(file: string, mode: string): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), 'cg-report-chromium-'));
  try {
    const args = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      '--window-size=1000,2600',
      mode,
      pathToFileURL(file).href,
    ];
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        chromiumPath,
        args,
        { timeout: 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
        (err, out, errOut) => (err ? reject(new Error(`chromium: ${err.message}\n${errOut}`)) : resolve(out)),
      );
    });
    const left = await processesMentioning(profile);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    expect(left, 'Chromium processes left behind').toEqual([]);
    return stdout;
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

/** The `<svg data-chart="...">...</svg>` element of a chart in a DOM dump. */
function chart(dom: string, id: string): string {
  const start = dom.indexOf(`data-chart="${id}"`);
  expect(start, `chart ${id} in the rendered DOM`).toBeGreaterThan(0);
  return dom.slice(dom.lastIndexOf('<svg', start), dom.indexOf('</svg>', start));
}

const seriesIn = (svg: string) => [...svg.matchAll(/data-series="([^"]+)"/g)].map((m) => m[1]);
const pointsIn = (svg: string, series: string) => {
  const start = svg.indexOf(`data-series="${series}"`);
  return (svg.slice(start, svg.indexOf('</g>', start)).match(/<circle/g) ?? []).length;
};

describe('release report of a rolling release whose new version fails and is rolled back', () => {
  const harness = new LocalHarness();
  let target: LocalTarget;
  let engine: ReleaseEngine;
  let dir: string;
  let recording: RunRecording;
  let load: ReturnType<typeof loadGenerator>;

  beforeAll(async () => {
    dir = await harness.dir('cg-report-');
    // v2 answers half of its searches with 500: the analysis after its first batch must fail.
    target = await harness.target({
      command: LocalHarness.command({}, { v2: { env: { FAULT_ERROR_RATE: '0.5' } } }),
    });
    const store = fileStore({ dir: join(dir, 'store') });
    const gate = { count: 6, intervalMs: 250, initialDelayMs: 250, failureLimit: 1, inconclusiveLimit: 5 };
    const engineWith = (verifiers: Verifier[]) =>
      createReleaseEngine({
        environment: 'staging',
        target,
        strategy: rolling({ maxSurge: 1, maxUnavailable: 0, gate }),
        verifiers,
        verifyGate: { ...gate, consecutiveSuccessLimit: 1 },
        store,
        replicas: 2,
        metrics: false,
      });
    // v1 is the first release: its pool has no traffic before it is routed, so it is judged on readiness.
    engine = engineWith([]);
    // Clients search all along: the proxy's per-pool figures are what proxyAnalysis and the charts read.
    load = loadGenerator(`${await target.endpoint()}/api/v1/search?q=graph`, 4);
    const first = await engine.release({ version: 'v1' });
    expect(first.status, first.reason).toBe('succeeded');
    // From v2 on, each batch is judged on what the proxy saw it serve.
    engine = engineWith([proxyAnalysis({ maxErrorRate: 0.05, maxP95LatencyMs: 1000, minRequests: 10 })]);
    const recorder = recordRun(engine, { target, sampleEveryMs: 150 });
    const result = await engine.release({ version: 'v2' });
    await load.stop();
    recording = await recorder.stop();
    expect(result.status).toBe('rolled-back');
    expect(result.serving).toBe('v1');
  });

  afterAll(async () => {
    await load?.stop();
    const survivors = await harness.cleanup();
    expect(survivors, 'processes that outlived target.destroy()').toEqual([]);
  });

  it('records every event of the run and samples each pool through the proxy', () => {
    expect(recording.runId).toMatch(/^staging-/);
    expect(recording.status).toBe('rolled-back');
    expect(recording.events[0]?.type).toBe('run.started');
    expect(recording.events.at(-1)?.type).toBe('run.finished');
    expect(new Set(recording.events.map((e) => e.runId))).toEqual(new Set([recording.runId]));
    const v2 = recording.traffic.filter((s) => s.pool === 'v2' && s.intervalRequests > 0);
    const v1 = recording.traffic.filter((s) => s.pool === 'v1' && s.intervalRequests > 0);
    expect(v1.length).toBeGreaterThan(2);
    expect(v2.length).toBeGreaterThan(0);
    // The fault shows in the samples: v2 fails about half its searches, v1 none.
    const rate = (xs: typeof v1) =>
      xs.reduce((n, s) => n + s.intervalErrors, 0) / xs.reduce((n, s) => n + s.intervalRequests, 0);
    expect(rate(v2)).toBeGreaterThan(0.3);
    expect(rate(v1)).toBe(0);
    expect(JSON.parse(JSON.stringify(recording))).toEqual(recording);
  });

  it('writes an HTML, a Markdown and a JSON report', async () => {
    const files = await writeReport(recording, join(dir, 'reports'));
    expect(files.html).toBe(join(dir, 'reports', `${recording.runId}.html`));
    for (const f of Object.values(files)) expect((await stat(f)).size).toBeGreaterThan(500);
    expect(JSON.parse(await readFile(files.json, 'utf8'))).toEqual(recording);
    const md = await readFile(files.markdown, 'utf8');
    expect(md).toContain(`# release v2 in staging: rolled-back`);
    expect(md).toContain(`| ${recording.runId} | staging | v1 → v2 | v1 |`);
    expect(md).toMatch(/## Incident report/);
    // The failing verdict with its observed value and threshold.
    expect(md).toMatch(
      /\| proxy-analysis \| \d+ \| error_rate\\\[v2\\\] \| fail \| 0\.\d+ \| [^|]*0\.05[^|]* \|/,
    );
    expect(md).toMatch(/\| deploy \| \d+ \| route v1=\d+% v2=\d+% \|/);
    expect(md).toMatch(/\| undo \| \d+ \| route v1=100% \|/);
  });

  it('opens in headless Chromium with latency, error-rate and weight charts per pool', async () => {
    const files = await writeReport(recording, join(dir, 'reports'), { basename: 'rendered' });
    const dom = await chromium(files.html, '--dump-dom');
    expect(dom).toContain('data-status="rolled-back"');
    const latency = chart(dom, 'latency');
    const errors = chart(dom, 'error-rate');
    const weight = chart(dom, 'traffic-weight');
    expect(seriesIn(latency)).toEqual(['v1', 'v2']);
    expect(seriesIn(errors)).toEqual(['v1', 'v2']);
    expect(seriesIn(weight)).toEqual(['v1', 'v2']);
    expect(pointsIn(latency, 'v1')).toBeGreaterThan(2);
    expect(pointsIn(errors, 'v2')).toBeGreaterThan(0);
    // The weight chart ends where the undo put the traffic: v1 at 100 %.
    expect(weight).toMatch(
      /<title>v1 100 % at [^<]+<\/title><\/circle>\s*<\/g>\s*<g class="series" data-series="v2"/,
    );
    expect(errors).toMatch(/data-marker="analysis batch-\d+: fail"/);
    expect(chart(dom, 'timeline')).toMatch(/data-phase="undo"/);
    expect(dom).toMatch(/data-analysis="batch-\d+" data-verdict="fail"/);
    const png = join(dir, 'reports', 'rendered.png');
    await chromium(files.html, `--screenshot=${png}`);
    expect((await stat(png)).size).toBeGreaterThan(20_000);
  });
});

describe('release report contents', () => {
  const base: RunRecording = {
    format: 'codegraph-release-recording/1',
    runId: 'production-1',
    recordingStartedAt: '2026-03-02T10:00:00.000Z',
    sampleEveryMs: 500,
    traffic: [],
    notes: ['target local has no traffic capability: latency and error-rate charts are empty'],
    events: [],
  };
  const ev = { runId: 'production-1', environment: 'production', kind: 'release' as const };

  it('escapes every text and keeps declared secrets out of HTML and Markdown', async () => {
    const secret = 'sk-live-4f9a7c2e1b';
    const harness = new LocalHarness();
    onTestFinished(async () => {
      expect(await harness.cleanup(), 'processes left behind').toEqual([]);
    });
    const target = await harness.target();
    const engine = createReleaseEngine({
      environment: 'production',
      target,
      strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
      verifiers: [
        {
          name: 'smoke',
          verify: async () => ({
            verdict: 'pass',
            checks: [
              {
                name: 'token',
                verdict: 'pass',
                observed: secret,
                threshold: '<b>set</b>',
                reason: `<script>alert("${secret}")</script> [click](https://evil.example) ![p](https://evil.example/p.png) www.evil.example`,
              },
            ],
          }),
        },
      ],
      store: fileStore({ dir: await harness.dir() }),
      metrics: false,
    });
    const recorder = recordRun(engine, { target, secrets: [secret] });
    await engine.release({ version: 'v9' });
    const rec = await recorder.stop();
    expect(rec.status).toBe('succeeded');
    expect(rec.notes).toEqual([]);
    const html = renderReportHtml(rec);
    const md = renderReportMarkdown(rec);
    for (const text of [html, md, JSON.stringify(rec)]) expect(text).not.toContain(secret);
    expect(html).toContain('[REDACTED]');
    expect(html).not.toContain('<script');
    expect(html).toContain('&lt;script&gt;');
    expect(html).toContain('&lt;b&gt;set&lt;/b&gt;');
    expect(md).not.toContain('<script');
    expect(md).toContain('&lt;script&gt;');
    // Rendered by a real GFM renderer: the reason's link, image and bare URL stay text.
    const rendered = new Marked({ gfm: true }).parse(md, { async: false }) as string;
    expect(rendered).toContain('evil.example');
    expect(rendered).not.toMatch(/<(a|img|script)\b/);
  });

  it('records the run it adopted, or the one it was given, and nothing of the next run', async () => {
    const harness = new LocalHarness();
    onTestFinished(async () => {
      expect(await harness.cleanup(), 'processes left behind').toEqual([]);
    });
    const target = await harness.target();
    const engine = createReleaseEngine({
      environment: 'qa',
      target,
      strategy: rolling({ maxSurge: 1, maxUnavailable: 0 }),
      store: fileStore({ dir: await harness.dir() }),
      replicas: 1,
      metrics: false,
    });
    const adopted = recordRun(engine, { target, sampleEveryMs: 50 });
    let byId: RunRecorder | undefined;
    const off = engine.on('run.started', (e) => {
      byId ??= recordRun(engine, { target, runId: e.runId, sampleEveryMs: 50 });
    });
    const first = await engine.release({ version: 'v1' });
    off();
    await adopted.finished;
    const second = await engine.release({ version: 'v2' });
    const [a, b] = [await adopted.stop(), await byId!.stop()];
    expect(a.runId).toBe(first.runId);
    expect(b.runId).toBe(first.runId);
    for (const rec of [a, b]) {
      expect(rec.status).toBe('succeeded');
      expect(rec.events.some((e) => e.runId === second.runId)).toBe(false);
      expect(rec.events.at(-1)).toMatchObject({ type: 'run.finished', serving: 'v1' });
    }
    // Stopping twice gives the same recording; later events change nothing.
    expect(await adopted.stop()).toEqual(a);
  });

  it('draws an empty chart with the reason when the target could not tell traffic', () => {
    const html = renderReportHtml({
      ...base,
      events: [
        { ...ev, type: 'run.started', time: '2026-03-02T10:00:00.000Z', version: 'v2', from: 'v1' },
        { ...ev, type: 'traffic.shifted', time: '2026-03-02T10:00:01.000Z', weights: { v1: 80, v2: 20 } },
        { ...ev, type: 'traffic.shifted', time: '2026-03-02T10:00:03.000Z', weights: { v2: 100 } },
      ],
    });
    expect(html).toContain('data-status="running"');
    const latency = chart(html, 'latency');
    expect(seriesIn(latency)).toEqual([]);
    expect(latency).toContain('has no traffic capability');
    const weight = chart(html, 'traffic-weight');
    expect(seriesIn(weight)).toEqual(['v1', 'v2']);
    // v1 leaves at 3 s: its step line drops to 0.
    expect(weight).toContain('<title>v1 0 % at 3.0 s</title>');
  });

  it('refuses a sampling interval that would flood the target', () => {
    expect(() => recordRun({ on: () => () => {} }, { sampleEveryMs: 0 })).toThrow(/sampleEveryMs/);
  });
});
