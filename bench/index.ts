/**
 * `npm run bench` (CONTRACT.md §8): R = product lines per process-CPU-second ÷ raw `JSON.parse` lines per
 * second over the same Istio JSON lines, measured on this machine in this run; then ingest latency at a fixed
 * rate, memory and /metrics at ~10k series, how CPU per line and query time grow with active series, and a
 * query over 30 days of history.
 *
 * Layout of a run: this process generates the lines (seeded simulator) and is the load generator; the
 * baseline runs in a fresh process of its own, before and after the product runs; meshlens runs all-in-one
 * (`start()`, what `npm start` runs) in a child process per phase with a fresh data directory (bench/child.ts),
 * so the HTTP clients' CPU is not counted as meshlens' and chDB's threads are.
 * A path's measurement starts after a warm-up has been stored and ends the moment every sent line is stored and
 * counted (bench/server.ts, acceptedRecords, says which counter tells), then the bench checks the stored
 * counts in ClickHouse and /metrics against what was sent (bench/verify.ts).
 *
 * Options: --lines=N (measured lines per path, default 300000), --warmup=N (30000), --concurrency=N (64),
 * --only=R1,R2,R3,series,p99,scaling,history, --seed=N, --series-destinations=N (2500 → 10k label sets),
 * --p99-seconds=N (30), --p99-rate=N (lines/s; default 80 % of R3's measured wall throughput, running R3 when
 * it is not among --only), --scaling-series=1000,10000,100000, --scaling-lines=N (100000),
 * --history-lines=N (300000), --history-days=N (30), --profile (CPU profile of meshlens' main thread per
 * path, summarized, written to bench/results/).
 * Exit code: 0 whenever the bench ran (missed targets are FAIL rows); 1 when it could not measure.
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BaselineJob, BaselinePass } from './baseline';
import { HOST, STORE_TIMEOUT_MS, Server } from './child';
import { cardinalityLines, simulatedLines, type Encoding, type LineSet } from './lines';
import { makeBodies, sendAll, timeGets, type SendResult } from './load';
import {
  LINES_PER_REQUEST,
  cpuSeconds,
  median,
  runHistory,
  runP99,
  runScaling,
  type HistoryResult,
  type P99Result,
  type ScalingRow,
  verified,
} from './phases';
import { summarizeProfile, type ProfileSummary } from './profile';
import type { CpuSnapshot, ScrapeResult, VerifyResult } from './server';
import { checkStored, type StoredCheck } from './verify';

const RESULTS_DIR = join(__dirname, 'results');
/** Linux USER_HZ: /proc thread times are in 1/100 s on every mainstream kernel build. */
const TICKS_PER_SECOND = 100;
/** CPU the process keeps using after the last line is stored (ClickHouse merges), measured for this long. */
const SETTLE_MS = 1_000;
/** Ingest latency target at 80 % of R3's saturation (CONTRACT.md §8). */
const P99_TARGET_MS = 100;
const P99_LOAD_SHARE = 0.8;

const PHASES = ['R1', 'R2', 'R3', 'series', 'p99', 'scaling', 'history'] as const;

interface Options {
  lines: number;
  warmup: number;
  concurrency: number;
  only: Set<string>;
  seed: number;
  seriesDestinations: number;
  profile: boolean;
  p99Seconds: number;
  /** Lines per second; 0 = 80 % of R3's measured wall throughput. */
  p99Rate: number;
  scalingSeries: number[];
  scalingLines: number;
  historyLines: number;
  historyDays: number;
}

/**
 * Closed-loop senders by default: enough to saturate meshlens on the 2-core bench machine, so R is measured at
 * saturation. Each sender waits for its answer, and answers wait for the insert, so few senders leave the
 * process idle between small batches. Wall throughput of R1 there (2026-12-02): 4 senders 20k lines/s, 16 39k,
 * 32 45–49k, 64 61–63k, 128 66k.
 */
const SATURATING_SENDERS = 64;

function parseOptions(argv: string[]): Options {
  const o: Options = {
    lines: 300_000,
    warmup: 30_000,
    concurrency: SATURATING_SENDERS,
    only: new Set(PHASES),
    seed: 20260314,
    seriesDestinations: 2500,
    profile: false,
    p99Seconds: 30,
    p99Rate: 0,
    scalingSeries: [1_000, 10_000, 100_000],
    scalingLines: 100_000,
    historyLines: 300_000,
    historyDays: 30,
  };
  for (const arg of argv) {
    const [k, v = ''] = arg.replace(/^--/, '').split('=');
    const int = (s = v): number => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 0) throw new Error(`--${k} needs a non-negative integer, got ${JSON.stringify(s)}`);
      return n;
    };
    if (k === 'lines') o.lines = int();
    else if (k === 'warmup') o.warmup = int();
    else if (k === 'concurrency') o.concurrency = Math.max(1, int());
    else if (k === 'seed') o.seed = int();
    else if (k === 'series-destinations') o.seriesDestinations = int();
    else if (k === 'p99-seconds') o.p99Seconds = Math.max(1, int());
    else if (k === 'p99-rate') o.p99Rate = int();
    else if (k === 'scaling-series') o.scalingSeries = v.split(',').map((s) => Math.max(4, int(s.trim())));
    else if (k === 'scaling-lines') o.scalingLines = Math.max(1, int());
    else if (k === 'history-lines') o.historyLines = Math.max(1, int());
    else if (k === 'history-days') o.historyDays = Math.max(1, int());
    else if (k === 'only') {
      o.only = new Set(v.split(',').map((s) => s.trim()));
      for (const p of o.only) if (!(PHASES as readonly string[]).includes(p)) throw new Error(`--only: unknown phase ${p} (phases: ${PHASES.join(', ')})`);
    } else if (k === 'profile') o.profile = true;
    else throw new Error(`unknown option ${arg}`);
  }
  return o;
}

/** Runs the baseline in a fresh process (see runBaselineChild) and returns its passes, the warm-up one dropped. */
function measureBaseline(job: BaselineJob): Promise<BaselinePass[]> {
  return new Promise((resolve, reject) => {
    const proc = fork(join(__dirname, 'run.js'), ['--baseline', JSON.stringify(job)], { stdio: ['ignore', 2, 2, 'ipc'] });
    let got: BaselinePass[] | undefined;
    proc.on('message', (m: { passes: BaselinePass[] }) => (got = m.passes.slice(1)));
    proc.on('error', reject);
    proc.on('exit', (code) => (got && code === 0 ? resolve(got) : reject(new Error(`baseline process exited with code ${code}`))));
  });
}

// ---------------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------------

interface PathSpec {
  id: 'R1' | 'R2' | 'R3';
  path: string;
  encoding: Encoding;
  contentType: string;
  /** MESHLENS_RAW_REQUESTS in the child's environment. */
  rawRequests: 0 | 1;
  target: number;
}

const PATHS: PathSpec[] = [
  {
    id: 'R1',
    path: 'HTTP NDJSON Istio JSON → aggregation → metrics + ClickHouse rollups (RAW_REQUESTS=0)',
    encoding: 'json',
    contentType: 'application/x-ndjson',
    rawRequests: 0,
    target: 0.33,
  },
  {
    id: 'R2',
    path: 'HTTP Istio TEXT → aggregation → metrics + ClickHouse rollups (RAW_REQUESTS=0)',
    encoding: 'text',
    contentType: 'text/plain',
    rawRequests: 0,
    target: 0.6,
  },
  {
    id: 'R3',
    path: 'R1 with every raw row stored (RAW_REQUESTS=1)',
    encoding: 'json',
    contentType: 'application/x-ndjson',
    rawRequests: 1,
    target: 0.2,
  },
];

interface PathResult {
  id: string;
  path: string;
  rawRequests: number;
  /** Set when the run's figures mean something else than the path says (e.g. the setting had no effect). */
  note?: string;
  lines: number;
  cpuSeconds: number;
  linesPerCpuSecond: number;
  wallSeconds: number;
  wallLinesPerSecond: number;
  baselineLinesPerSecond: number;
  R: number;
  target: number;
  pass: boolean;
  send: SendResult;
  /** Share of the measured ticks per thread group (main JS thread, chDB pools, libuv, V8 helpers). */
  threads: { name: string; cpuSeconds: number; pct: number }[];
  /** CPU the process used in the SETTLE_MS after the last line was stored (background merges). */
  settleCpuSeconds: number;
  /** Batches the aggregator stored during the measurement: the fixed cost of an insert is paid per batch. */
  batches: number;
  verify: VerifyResult;
  stored: StoredCheck;
  peakRssMb: number;
  profile?: ProfileSummary;
}

function threadSplit(a: CpuSnapshot, b: CpuSnapshot): PathResult['threads'] {
  const rows: { name: string; cpuSeconds: number; pct: number }[] = [];
  let total = 0;
  for (const [name, t1] of Object.entries(b.threads)) {
    const d = t1 - (a.threads[name] ?? 0);
    if (d <= 0) continue;
    total += d;
    rows.push({ name, cpuSeconds: d / TICKS_PER_SECOND, pct: 0 });
  }
  for (const r of rows) r.pct = total > 0 ? (100 * r.cpuSeconds * TICKS_PER_SECOND) / total : 0;
  return rows.sort((x, y) => y.cpuSeconds - x.cpuSeconds);
}

async function runPath(spec: PathSpec, set: LineSet, baseline: number, o: Options): Promise<PathResult> {
  const server = Server.spawn({ MESHLENS_RAW_REQUESTS: String(spec.rawRequests) });
  try {
    const { ports } = await server.ready;
    const send = (lines: string[]): Promise<SendResult> =>
      sendAll(makeBodies(lines, LINES_PER_REQUEST), {
        host: HOST,
        port: ports.http,
        path: '/v1/accesslogs',
        contentType: spec.contentType,
        concurrency: o.concurrency,
      });
    log(`${spec.id}: meshlens ready`);
    const warm = await send(set.warmup);
    await server.call({ op: 'waitAccepted', target: warm.accepted, timeoutMs: STORE_TIMEOUT_MS });
    log(`${spec.id}: warm-up stored, measuring`);
    const bodies = makeBodies(set.measured, LINES_PER_REQUEST);
    if (o.profile) await server.call({ op: 'profileStart' });
    const c0 = await server.call<CpuSnapshot>({ op: 'cpu' });
    const sent = await sendAll(bodies, { host: HOST, port: ports.http, path: '/v1/accesslogs', contentType: spec.contentType, concurrency: o.concurrency });
    const c1 = await server.call<CpuSnapshot>({ op: 'waitAccepted', target: warm.accepted + sent.accepted, timeoutMs: STORE_TIMEOUT_MS });
    let profile: ProfileSummary | undefined;
    if (o.profile) {
      const path = join(RESULTS_DIR, `${spec.id}.cpuprofile`);
      await server.call({ op: 'profileStop', path });
      profile = summarizeProfile(JSON.parse(readFileSync(path, 'utf8')));
    }
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const c2 = await server.call<CpuSnapshot>({ op: 'cpu' });
    const verify = await server.call<VerifyResult>({ op: 'verify' });
    const mem = await server.call<NodeJS.MemoryUsage>({ op: 'heap' });

    const expected = warm.accepted + sent.accepted;
    const problems: string[] = [];
    if (sent.rejected > 0 || warm.rejected > 0) problems.push(`${sent.rejected + warm.rejected} lines rejected`);
    if (sent.accepted !== set.measured.length) problems.push(`${sent.accepted} of ${set.measured.length} lines accepted`);
    // Every generated line was sent, so the simulator's truth says which must be error/denied.
    const stored = checkStored(verify, expected, spec.rawRequests, set.outcomes);
    problems.push(...stored.problems);
    if (problems.length > 0) throw new Error(`${spec.id}: the run did not store what was sent: ${problems.join('; ')}`);

    const cpu = cpuSeconds(c0, c1);
    const linesPerCpuSecond = sent.accepted / cpu;
    const R = linesPerCpuSecond / baseline;
    const wallSeconds = (c1.wallMs - c0.wallMs) / 1000;
    const note =
      spec.rawRequests === 0 && stored.rawRows === 'all'
        ? 'MESHLENS_RAW_REQUESTS=0 had no effect in this build (every ok record was stored as a raw row), so this figure includes raw rows'
        : undefined;
    return {
      id: spec.id,
      path: spec.path,
      rawRequests: spec.rawRequests,
      ...(note ? { note } : {}),
      lines: sent.accepted,
      cpuSeconds: cpu,
      linesPerCpuSecond,
      wallSeconds,
      wallLinesPerSecond: sent.accepted / wallSeconds,
      baselineLinesPerSecond: baseline,
      R,
      target: spec.target,
      pass: R >= spec.target,
      send: sent,
      threads: threadSplit(c0, c1),
      settleCpuSeconds: cpuSeconds(c1, c2),
      batches: c1.requestBatches - c0.requestBatches,
      verify,
      stored,
      peakRssMb: mem.rss / 2 ** 20,
      ...(profile ? { profile } : {}),
    };
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------------
// Series: memory per active series, /metrics at ~10k series
// ---------------------------------------------------------------------------------------------------

interface SeriesResult {
  labelSets: Record<string, number>;
  newLabelSets: number;
  heapDeltaBytes: number;
  bytesPerSeries: number;
  /** registry.metrics() in the meshlens process: the longest the event loop is held during one scrape. */
  scrapeInProcessMs: { p50: number; max: number; first: number };
  /** registry.metrics() start to end, the event loop let go or not. */
  scrapeTotalMs: { p50: number; max: number };
  /** GET /metrics over HTTP from the bench process (includes transfer). */
  scrapeHttpMs: { p50: number; max: number };
  scrapeBytes: number;
  scrapeSamples: number;
  stallTargetMs: number;
  pass: boolean;
}

async function runSeries(o: Options, warmupLines: string[]): Promise<SeriesResult> {
  const server = Server.spawn();
  try {
    const { ports } = await server.ready;
    const opts = { host: HOST, port: ports.http, path: '/v1/accesslogs', contentType: 'application/x-ndjson', concurrency: o.concurrency };
    // Warm the pipeline (code paths, ClickHouse parts) with ordinary traffic; its few series are subtracted.
    const warm = await sendAll(makeBodies(warmupLines, LINES_PER_REQUEST), opts);
    await server.call({ op: 'waitAccepted', target: warm.accepted, timeoutMs: STORE_TIMEOUT_MS });
    await server.call({ op: 'scrape', times: 2 });
    const s0 = await server.call<Record<string, number>>({ op: 'series' });
    const h0 = await server.call<NodeJS.MemoryUsage>({ op: 'heap' });
    // Memory per series apart from memory per request: these lines carry no request id, so no record waits for its
    // other side in the joined view's pairing (up to 5 minutes, about 420 bytes each) or is remembered for span edges
    // (65 bytes). That state grows with the request rate, not with series, and has bounds of its own.
    const lines = cardinalityLines(o.seriesDestinations, Date.now(), false);
    const sent = await sendAll(makeBodies(lines, LINES_PER_REQUEST), opts);
    await server.call({ op: 'waitAccepted', target: warm.accepted + sent.accepted, timeoutMs: STORE_TIMEOUT_MS });
    const s1 = await server.call<Record<string, number>>({ op: 'series' });
    const h1 = await server.call<NodeJS.MemoryUsage>({ op: 'heap' });
    const inProc = await server.call<ScrapeResult>({ op: 'scrape', times: 10 });
    const http = await timeGets(ports.http, HOST, '/metrics', 10);
    await verified(server, 'series', warm.accepted + sent.accepted, 1);
    let newLabelSets = 0;
    for (const [k, v] of Object.entries(s1)) newLabelSets += v - (s0[k] ?? 0);
    const heapDelta = h1.heapUsed - h0.heapUsed;
    // The first scrape after the load also pays for compiling and growing what the later ones reuse.
    const stallMax = Math.max(...inProc.stallMs.slice(1));
    return {
      labelSets: s1,
      newLabelSets,
      heapDeltaBytes: heapDelta,
      bytesPerSeries: newLabelSets > 0 ? heapDelta / newLabelSets : 0,
      scrapeInProcessMs: { p50: median(inProc.stallMs.slice(1)), max: stallMax, first: inProc.stallMs[0] ?? 0 },
      scrapeTotalMs: { p50: median(inProc.ms.slice(1)), max: Math.max(...inProc.ms.slice(1)) },
      scrapeHttpMs: { p50: median(http.ms), max: Math.max(...http.ms) },
      scrapeBytes: inProc.bytes,
      scrapeSamples: inProc.samples,
      stallTargetMs: 50,
      pass: stallMax <= 50,
    };
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------

/**
 * CPU-µs per line by stage: the main thread's CPU split by the profile's stages of its busy samples, and every
 * other thread group's CPU as it is (chDB, V8's GC and compiler threads). The profiler's own thread is left out,
 * so the lines add up to a little less than the path's CPU-µs per line (the profiler also slows the main thread).
 */
function whereTheCpuGoes(r: PathResult, profile: ProfileSummary): string[] {
  const perLine = (cpuSeconds: number): number => (1e6 * cpuSeconds) / r.lines;
  const main = r.threads.find((t) => t.name === 'main (JS)');
  const rows: [string, number][] = [];
  if (main) for (const st of profile.stages) rows.push([`main thread: ${st.name}`, (perLine(main.cpuSeconds) * st.selfPct) / 100]);
  for (const t of r.threads) if (t.name !== 'main (JS)' && t.name !== 'V8 profiler') rows.push([t.name, perLine(t.cpuSeconds)]);
  rows.sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((n, [, us]) => n + us, 0);
  return [`  where a line's CPU goes (µs per line, ${fmt(total, 1)} in all without the profiler's thread):`, ...rows.filter(([, us]) => us >= 0.05).map(([name, us]) => `    ${fmt(us, 2).padStart(6)}  ${name}`)];
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Columns right-aligned but `leftColumn` (a text column). */
function table(rows: string[][], leftColumn = 1): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === leftColumn ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

const startedAt = performance.now();

function log(msg: string): void {
  process.stderr.write(`bench [${((performance.now() - startedAt) / 1000).toFixed(1)} s]: ${msg}\n`);
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  mkdirSync(RESULTS_DIR, { recursive: true });
  const now = Date.now();
  const wantP99 = o.only.has('p99');
  // p99's load is 80 % of R3's measured saturation: R3 runs too unless a rate is given.
  const paths = PATHS.filter((p) => o.only.has(p.id) || (p.id === 'R3' && wantP99 && o.p99Rate === 0));

  const measuresR = paths.length > 0;
  // The Bookinfo lines serve R1-R3 (and the baseline), p99 and the series phase's warm-up; scaling and history make their own.
  const needJson = measuresR || wantP99 || o.only.has('series');
  if (needJson) log(`generating ${fmt(o.warmup + o.lines)} lines per encoding (seed ${o.seed})`);
  const json = needJson ? simulatedLines('json', o.seed, o.warmup, o.lines, now) : { warmup: [], measured: [], outcomes: { ok: 0, error: 0, denied: 0 } };
  const text = paths.some((p) => p.encoding === 'text') ? simulatedLines('text', o.seed, o.warmup, o.lines, now) : undefined;

  const linesDir = mkdtempSync(join(tmpdir(), 'meshlens-bench-lines-'));
  process.once('exit', () => rmSync(linesDir, { recursive: true, force: true }));
  const linesFile = join(linesDir, 'measured.ndjson');
  const job: BaselineJob = { file: linesFile, passes: 6 };
  const passes: BaselinePass[] = [];
  if (measuresR) {
    writeFileSync(linesFile, json.measured.join('\n'));
    log('baseline: JSON.parse of the measured JSON lines in a fresh process, 1 warm-up + 5 passes');
    passes.push(...(await measureBaseline(job)));
  }

  const results: PathResult[] = [];
  let baseline = Math.max(0, ...passes.map((p) => p.linesPerSec));
  for (const spec of paths) {
    log(`${spec.id}: starting meshlens (MESHLENS_RAW_REQUESTS=${spec.rawRequests}), ${fmt(o.warmup)} warm-up lines, then ${fmt(json.measured.length)} measured lines`);
    const set = spec.encoding === 'json' ? json : (text as LineSet);
    const r = await runPath(spec, set, baseline, o);
    results.push(r);
    log(`${spec.id}: ${fmt(r.linesPerCpuSecond)} lines/CPU-s over ${fmt(r.cpuSeconds, 2)} CPU-s (${fmt(r.wallLinesPerSecond)} lines/s wall)`);
  }
  let series: SeriesResult | undefined;
  if (o.only.has('series')) {
    log(`series: ${fmt(o.seriesDestinations)} destinations x 3 codes (≈ ${fmt(o.seriesDestinations * 4)} label sets)`);
    series = await runSeries(o, json.warmup.slice(0, 5000));
  }
  let p99: P99Result | undefined;
  if (wantP99) {
    const r3 = results.find((r) => r.id === 'R3');
    const rate = o.p99Rate > 0 ? o.p99Rate : Math.round(P99_LOAD_SHARE * (r3 as PathResult).wallLinesPerSecond);
    const basis =
      o.p99Rate > 0 ? 'given with --p99-rate' : `80 % of R3's ${fmt((r3 as PathResult).wallLinesPerSecond)} lines/s wall (${o.concurrency} closed-loop clients)`;
    log(`p99: ${fmt(rate)} lines/s (${basis}) for ${o.p99Seconds} s, open loop`);
    p99 = await runP99(json, { rateLinesPerSecond: rate, basis, seconds: o.p99Seconds, concurrency: o.concurrency, targetMs: P99_TARGET_MS });
  }
  let scaling: ScalingRow[] | undefined;
  if (o.only.has('scaling')) scaling = await runScaling(o.scalingSeries, o.scalingLines, o.concurrency, log, o.profile ? RESULTS_DIR : undefined);
  let history: HistoryResult | undefined;
  if (o.only.has('history')) history = await runHistory(o.seed, o.historyLines, o.historyDays, o.concurrency, log);

  if (measuresR) {
    // The baseline again after the product runs: the best pass of the whole run is the denominator.
    log('baseline again, 1 warm-up + 5 passes');
    passes.push(...(await measureBaseline(job)));
    const best = Math.max(...passes.map((p) => p.linesPerSec));
    if (best !== baseline) {
      baseline = best;
      for (const r of results) {
        r.baselineLinesPerSecond = best;
        r.R = r.linesPerCpuSecond / best;
        r.pass = r.R >= r.target;
      }
    }
  }

  const out: string[] = [''];
  if (results.length > 0) {
    const rows = [['id', 'path', 'lines', 'lines/CPU-s', 'baseline lines/s', 'R', 'target', 'result']];
    for (const r of results) {
      rows.push([r.id, r.path, fmt(r.lines), fmt(r.linesPerCpuSecond), fmt(baseline), fmt(r.R, 3), `≥ ${fmt(r.target, 2)}`, r.pass ? 'PASS' : 'FAIL']);
    }
    out.push(table(rows), '');
    out.push(
      `baseline: JSON.parse of the ${fmt(json.measured.length)} measured lines, best of ${passes.length} passes in two fresh processes ` +
        `(before and after the product runs; median ${fmt(median(passes.map((p) => p.linesPerSec)))} lines/s).`,
    );
  }
  for (const r of results) {
    const split = r.threads.filter((t) => t.pct >= 0.5).map((t) => `${t.name} ${fmt(t.pct)}%`).join(', ');
    out.push(
      `${r.id}: ${fmt(1e6 / r.linesPerCpuSecond, 1)} CPU-µs per line; ${fmt(r.cpuSeconds, 2)} CPU-s in ${fmt(r.wallSeconds, 2)} s wall ` +
        `(${fmt(r.wallLinesPerSecond)} lines/s); 429 retries ${r.send.retries}; request p50/p99 ${fmt(r.send.latencyMs.p50)}/${fmt(r.send.latencyMs.p99)} ms; ` +
        `+${fmt(r.settleCpuSeconds, 2)} CPU-s in the ${SETTLE_MS / 1000} s after; ${fmt(r.batches)} batches stored (${fmt(r.lines / Math.max(1, r.batches))} lines each on average)`,
    );
    out.push(
      `  stored: rollup and meshlens_requests_total ${fmt(r.verify.rollup.requests)} = sent; raw rows ${fmt(r.verify.raw.rows)} ` +
        `(error ${fmt(r.verify.raw.error)}, denied ${fmt(r.verify.raw.denied)}, ok ${fmt(r.verify.raw.ok)} = ${fmt(100 * r.stored.okStoredShare, 1)} % of ok records` +
        `${r.rawRequests === 0 && r.stored.rawRows === 'sampled' ? `, ${fmt(r.stored.okKeptWithTheirRequest)} of them with their request's error/denied row` : ''})`,
    );
    if (r.note) out.push(`  note: ${r.note}.`);
    out.push(`  CPU by thread: ${split}`);
    if (r.profile) {
      out.push(`  main thread profile (self time): ${r.profile.areas.slice(0, 8).map((a) => `${a.name} ${fmt(a.selfPct, 1)}%`).join(', ')}`);
      out.push(...whereTheCpuGoes(r, r.profile));
    }
  }
  if (series) {
    out.push(
      `memory per active series: ${fmt(series.bytesPerSeries)} B of heap (${fmt(series.heapDeltaBytes / 2 ** 20, 1)} MiB / ${fmt(series.newLabelSets)} new label sets; ` +
        `held: ${Object.entries(series.labelSets).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}) (target ≤ 1,024 B: ${series.bytesPerSeries <= 1024 ? 'PASS' : 'FAIL'})`,
    );
    out.push(
      `/metrics at ${fmt(Object.values(series.labelSets).reduce((a, b) => a + b, 0))} label sets (${fmt(series.scrapeSamples)} samples, ${fmt(series.scrapeBytes / 1024)} KiB): ` +
        `in-process stall p50 ${fmt(series.scrapeInProcessMs.p50, 1)} ms, max ${fmt(series.scrapeInProcessMs.max, 1)} ms (target ≤ 50 ms: ${series.pass ? 'PASS' : 'FAIL'}), ` +
        `rendering p50 ${fmt(series.scrapeTotalMs.p50, 1)} ms; ` +
        `HTTP GET p50 ${fmt(series.scrapeHttpMs.p50, 1)} ms, max ${fmt(series.scrapeHttpMs.max, 1)} ms`,
    );
  }
  if (p99) out.push(...p99Report(p99));
  if (scaling) out.push(...scalingReport(scaling));
  if (history) out.push(...historyReport(history));
  process.stdout.write(`${out.join('\n')}\n`);

  const file = join(RESULTS_DIR, 'latest.json');
  writeFileSync(
    file,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.version, platform: process.platform },
        options: { ...o, only: [...o.only], linesPerRequest: LINES_PER_REQUEST },
        baseline: measuresR
          ? {
              what: 'JSON.parse of each measured Istio JSON line in a tight loop, lines per wall second, in a fresh process before and after the product runs (warm-up pass dropped)',
              used: 'best',
              linesPerSecond: baseline,
              medianLinesPerSecond: median(passes.map((p) => p.linesPerSec)),
              passes,
            }
          : undefined,
        results,
        series,
        p99,
        scaling,
        history,
      },
      null,
      2,
    ),
  );
  log(`results written to ${file}`);
}

function p99Report(p: P99Result): string[] {
  const o = p.open;
  const lat = (n: number): string => (Number.isFinite(n) ? fmt(n, 1) : 'unanswered');
  return [
    `ingest p99, open loop: ${fmt(p.rateLinesPerSecond)} lines/s offered (${p.basis}) = ${fmt(p.requestsPerSecond, 1)} requests of ${LINES_PER_REQUEST} lines/s for ${p.seconds} s, ` +
      `${fmt(o.scheduled)} requests, MESHLENS_RAW_REQUESTS=1`,
    `  latency from scheduled send to 2xx: p50 ${lat(o.latencyMs.p50)} ms, p90 ${lat(o.latencyMs.p90)} ms, p99 ${lat(o.latencyMs.p99)} ms, max ${lat(o.latencyMs.max)} ms ` +
      `(target p99 ≤ ${p.targetMs} ms: ${p.pass ? 'PASS' : 'FAIL'})`,
    `  answered later than ${p.targetMs} ms: ${fmt(o.late)}; 429 answers ${fmt(o.answers429)}, 503 answers ${fmt(o.answers503)} (retried); ` +
      `unanswered ${fmt(o.unanswered)}, failed ${fmt(o.failed)}${o.firstFailure ? ` (${o.firstFailure})` : ''}; ` +
      `meshlens used ${fmt(p.coresUsed, 2)} cores; loader's own send lag p99 ${fmt(o.sendLagMs.p99, 1)} ms, max ${fmt(o.sendLagMs.max, 1)} ms`,
  ];
}

function scalingReport(rows: ScalingRow[]): string[] {
  const t = [['series', 'label sets held', 'lines', 'CPU-µs/line', 'lines/s wall', 'subsets 5m p50/max ms', 'graph 5m p50/max ms']];
  for (const r of rows) {
    t.push([
      fmt(r.targetSeries),
      fmt(r.activeSeries),
      fmt(r.lines),
      fmt(r.cpuUsPerLine, 1),
      fmt(r.wallLinesPerSecond),
      `${fmt(r.subsetsMs.p50, 1)} / ${fmt(r.subsetsMs.max, 1)}`,
      `${fmt(r.graphMs.p50, 1)} / ${fmt(r.graphMs.max, 1)}`,
    ]);
  }
  const raised = rows.filter((r) => r.maxSeries > 50_000).map((r) => `${fmt(r.targetSeries)} (MESHLENS_MAX_SERIES=${r.maxSeries})`);
  return [
    '',
    'scaling with active series (MESHLENS_RAW_REQUESTS=1; queries: window=5m, default reporter, 5 runs each):',
    table(t, -1),
    ...(raised.length > 0 ? [`  series cap raised for ${raised.join(', ')}`] : []),
    ...rows.flatMap((r) =>
      r.profiles
        ? (['create', 'measured'] as const).map(
            (k) =>
              `  ${fmt(r.targetSeries)} series, main thread while ${k === 'create' ? 'creating them' : 'measuring'} (self time): ` +
              r.profiles![k].functions.slice(0, 6).map((a) => `${a.name} ${fmt(a.selfPct, 1)}%`).join(', '),
          )
        : [],
    ),
  ];
}

function historyReport(h: HistoryResult): string[] {
  const t = [['query', 'p50 ms', 'max ms', 'rows read', 'rollup + edge-day raw rows', 'reads rollups']];
  for (const q of h.queries) t.push([q.name, fmt(q.ms.p50, 1), fmt(q.ms.max, 1), fmt(q.readRows), fmt(q.bound), q.pass ? 'PASS' : 'FAIL']);
  return [
    '',
    `history: ${fmt(h.lines)} lines in hourly bursts over ${h.days} days (${h.span.first} … ${h.span.last}), stored in ${fmt(h.ingestWallSeconds, 1)} s; ` +
      `raw table ${fmt(h.rawRows)} rows, requests_rollup_1m ${fmt(h.rollupRows)} rows, raw rows on the window's edge days ${fmt(h.edgeDayRawRows)}`,
    `${h.days}-day queries (rows read: ClickHouse's SelectedRows around each call, fewest of 3; a query that reads rollups reads at most the rollup rows plus the edge days' raw rows):`,
    table(t, 0),
    `${h.days}-day query reads rollups, not ${h.days} days of raw rows: ${h.pass ? 'PASS' : 'FAIL'}`,
  ];
}

export function runBench(): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench: failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
