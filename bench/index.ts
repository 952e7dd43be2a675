/**
 * `npm run bench` (CONTRACT.md §8): R = product lines per process-CPU-second ÷ raw `JSON.parse` lines per
 * second over the same Istio JSON lines, measured on this machine in this run.
 *
 * Layout of a run: this process generates the lines (seeded simulator) and is the load generator; the
 * baseline runs in a fresh process of its own, before and after the product runs; meshlens runs all-in-one
 * (`start()`, what `npm start` runs) in a child process per path with a fresh data directory, so the HTTP
 * clients' CPU is not counted as meshlens' and chDB's threads are.
 * A path's measurement starts after a warm-up has been stored and ends the moment every sent line is stored
 * (`meshlens_store_rows_total{table="requests"}` reaches the count, so the metrics and rollups are updated
 * too), then the bench checks the stored counts in ClickHouse and /metrics against what was sent.
 *
 * Options: --lines=N (measured lines per path, default 300000), --warmup=N (30000), --concurrency=N (4),
 * --only=R1,R2,R3,series, --seed=N, --series-destinations=N (2500 → 10k label sets), --profile (CPU profile
 * of meshlens' main thread per path, summarized, written to bench/results/).
 * Exit code: 0 whenever the bench ran (missed targets are FAIL rows); 1 when it could not measure.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BaselineJob, BaselinePass } from './baseline';
import { cardinalityLines, simulatedLines, type Encoding, type LineSet } from './lines';
import { makeBodies, sendAll, timeGets, type SendResult } from './load';
import { summarizeProfile, type ProfileSummary } from './profile';
import type { CpuSnapshot, ScrapeResult, ServerRequest, VerifyResult } from './server';

const RESULTS_DIR = join(__dirname, 'results');
const LINES_PER_REQUEST = 500;
const HOST = '127.0.0.1';
/** Linux USER_HZ: /proc thread times are in 1/100 s on every mainstream kernel build. */
const TICKS_PER_SECOND = 100;
/** How long the bench waits for the last line to be stored before it calls the run broken. */
const STORE_TIMEOUT_MS = 180_000;
/** CPU the process keeps using after the last line is stored (ClickHouse merges), measured for this long. */
const SETTLE_MS = 1_000;

interface Options {
  lines: number;
  warmup: number;
  concurrency: number;
  only: Set<string>;
  seed: number;
  seriesDestinations: number;
  profile: boolean;
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    lines: 300_000,
    warmup: 30_000,
    concurrency: 4,
    only: new Set(['R1', 'R2', 'R3', 'series']),
    seed: 20260314,
    seriesDestinations: 2500,
    profile: false,
  };
  for (const arg of argv) {
    const [k, v = ''] = arg.replace(/^--/, '').split('=');
    const int = (): number => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`--${k} needs a non-negative integer, got ${JSON.stringify(v)}`);
      return n;
    };
    if (k === 'lines') o.lines = int();
    else if (k === 'warmup') o.warmup = int();
    else if (k === 'concurrency') o.concurrency = Math.max(1, int());
    else if (k === 'seed') o.seed = int();
    else if (k === 'series-destinations') o.seriesDestinations = int();
    else if (k === 'only') o.only = new Set(v.split(',').map((s) => s.trim()));
    else if (k === 'profile') o.profile = true;
    else throw new Error(`unknown option ${arg}`);
  }
  return o;
}

// ---------------------------------------------------------------------------------------------------
// The process under test
// ---------------------------------------------------------------------------------------------------

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

class Server {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private exited = false;
  readonly ready: Promise<{ ports: { http: number } }>;

  private constructor(
    private readonly proc: ChildProcess,
    readonly dataDir: string,
  ) {
    let onReady!: Pending;
    this.ready = new Promise((resolve, reject) => (onReady = { resolve: resolve as (v: unknown) => void, reject }));
    this.pending.set(0, onReady);
    proc.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(`meshlens (bench child): ${m.error}`));
    });
    proc.on('exit', (code, signal) => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error(`meshlens child exited (code ${code}, signal ${signal})`));
      this.pending.clear();
    });
  }

  static spawn(): Server {
    const dataDir = mkdtempSync(join(tmpdir(), 'meshlens-bench-'));
    const proc = fork(join(__dirname, 'run.js'), ['--server'], {
      env: {
        ...process.env,
        MESHLENS_DATA_DIR: dataDir,
        MESHLENS_LISTEN_HOST: HOST,
        MESHLENS_HTTP_PORT: '0',
        MESHLENS_OTLP_GRPC_PORT: '0',
        MESHLENS_OTLP_HTTP_PORT: '0',
        MESHLENS_ZIPKIN_PORT: '0',
        MESHLENS_LOG_LEVEL: 'warn',
        MESHLENS_CLICKHOUSE_URL: '',
        MESHLENS_KAFKA_BROKERS: '',
      },
      execArgv: ['--expose-gc'],
      // The child's logs go to our stderr, keeping stdout for the table.
      stdio: ['ignore', 2, 2, 'ipc'],
    });
    return new Server(proc, dataDir);
  }

  call<T>(req: ServerRequest): Promise<T> {
    if (this.exited) return Promise.reject(new Error('meshlens child has exited'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, ...req });
    });
  }

  async stop(): Promise<void> {
    if (!this.exited) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      await this.call({ op: 'stop' }).catch(() => undefined);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (!this.exited) this.proc.kill('SIGKILL');
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
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
  target: number;
  note: string;
}

const RAW_ROWS_NOTE =
  'the all-in-one always stores raw rows today, so this path includes raw rows to ClickHouse (the same work as R3)';

const PATHS: PathSpec[] = [
  {
    id: 'R1',
    path: 'HTTP NDJSON Istio JSON → aggregation → metrics + ClickHouse aggregates',
    encoding: 'json',
    contentType: 'application/x-ndjson',
    target: 0.33,
    note: RAW_ROWS_NOTE,
  },
  {
    id: 'R2',
    path: 'HTTP Istio TEXT → aggregation → metrics + ClickHouse aggregates',
    encoding: 'text',
    contentType: 'text/plain',
    target: 0.6,
    note: RAW_ROWS_NOTE,
  },
  {
    id: 'R3',
    path: 'R1 + raw rows to ClickHouse',
    encoding: 'json',
    contentType: 'application/x-ndjson',
    target: 0.2,
    note: 'measured as its own run of the same path as R1 (fresh process and data directory)',
  },
];

interface PathResult {
  id: string;
  path: string;
  note: string;
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
  verify: VerifyResult;
  peakRssMb: number;
  profile?: ProfileSummary;
}

function cpuSeconds(a: CpuSnapshot, b: CpuSnapshot): number {
  return (b.user + b.system - a.user - a.system) / 1e6;
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
  const server = Server.spawn();
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
    await server.call({ op: 'waitStored', target: warm.accepted, timeoutMs: STORE_TIMEOUT_MS });
    log(`${spec.id}: warm-up stored, measuring`);
    const bodies = makeBodies(set.measured, LINES_PER_REQUEST);
    if (o.profile) await server.call({ op: 'profileStart' });
    const c0 = await server.call<CpuSnapshot>({ op: 'cpu' });
    const sent = await sendAll(bodies, { host: HOST, port: ports.http, path: '/v1/accesslogs', contentType: spec.contentType, concurrency: o.concurrency });
    const c1 = await server.call<CpuSnapshot>({ op: 'waitStored', target: warm.accepted + sent.accepted, timeoutMs: STORE_TIMEOUT_MS });
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
    if (verify.rawRows !== expected) problems.push(`requests table holds ${verify.rawRows} rows, expected ${expected}`);
    if (verify.rollupRequests !== expected) problems.push(`requests_1m counts ${verify.rollupRequests}, expected ${expected}`);
    if (verify.requestsTotal !== expected) problems.push(`meshlens_requests_total sums to ${verify.requestsTotal}, expected ${expected}`);
    if (problems.length > 0) throw new Error(`${spec.id}: the run did not store what was sent: ${problems.join('; ')}`);

    const cpu = cpuSeconds(c0, c1);
    const linesPerCpuSecond = sent.accepted / cpu;
    const R = linesPerCpuSecond / baseline;
    const wallSeconds = (c1.wallMs - c0.wallMs) / 1000;
    return {
      id: spec.id,
      path: spec.path,
      note: spec.note,
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
      verify,
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.floor((s.length - 1) / 2)] as number);
}

async function runSeries(o: Options, warmupLines: string[]): Promise<SeriesResult> {
  const server = Server.spawn();
  try {
    const { ports } = await server.ready;
    const opts = { host: HOST, port: ports.http, path: '/v1/accesslogs', contentType: 'application/x-ndjson', concurrency: o.concurrency };
    // Warm the pipeline (code paths, ClickHouse parts) with ordinary traffic; its few series are subtracted.
    const warm = await sendAll(makeBodies(warmupLines, LINES_PER_REQUEST), opts);
    await server.call({ op: 'waitStored', target: warm.accepted, timeoutMs: STORE_TIMEOUT_MS });
    await server.call({ op: 'scrape', times: 2 });
    const s0 = await server.call<Record<string, number>>({ op: 'series' });
    const h0 = await server.call<NodeJS.MemoryUsage>({ op: 'heap' });
    const lines = cardinalityLines(o.seriesDestinations, Date.now());
    const sent = await sendAll(makeBodies(lines, LINES_PER_REQUEST), opts);
    await server.call({ op: 'waitStored', target: warm.accepted + sent.accepted, timeoutMs: STORE_TIMEOUT_MS });
    const s1 = await server.call<Record<string, number>>({ op: 'series' });
    const h1 = await server.call<NodeJS.MemoryUsage>({ op: 'heap' });
    const inProc = await server.call<ScrapeResult>({ op: 'scrape', times: 10 });
    const http = await timeGets(ports.http, HOST, '/metrics', 10);
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

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

const startedAt = performance.now();

function log(msg: string): void {
  process.stderr.write(`bench [${((performance.now() - startedAt) / 1000).toFixed(1)} s]: ${msg}\n`);
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  mkdirSync(RESULTS_DIR, { recursive: true });
  const now = Date.now();
  const paths = PATHS.filter((p) => o.only.has(p.id));

  log(`generating ${fmt(o.warmup + o.lines)} lines per encoding (seed ${o.seed})`);
  const json = simulatedLines('json', o.seed, o.warmup, o.lines, now);
  const text = paths.some((p) => p.encoding === 'text') ? simulatedLines('text', o.seed, o.warmup, o.lines, now) : undefined;

  const linesDir = mkdtempSync(join(tmpdir(), 'meshlens-bench-lines-'));
  process.once('exit', () => rmSync(linesDir, { recursive: true, force: true }));
  const linesFile = join(linesDir, 'measured.ndjson');
  writeFileSync(linesFile, json.measured.join('\n'));
  const job: BaselineJob = { file: linesFile, passes: 6 };
  log('baseline: JSON.parse of the measured JSON lines in a fresh process, 1 warm-up + 5 passes');
  const passes: BaselinePass[] = await measureBaseline(job);

  const results: PathResult[] = [];
  let baseline = Math.max(...passes.map((p) => p.linesPerSec));
  for (const spec of paths) {
    log(`${spec.id}: starting meshlens, ${fmt(o.warmup)} warm-up lines, then ${fmt(o.lines)} measured lines`);
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

  const rows = [['id', 'path', 'lines', 'lines/CPU-s', 'baseline lines/s', 'R', 'target', 'result']];
  for (const r of results) {
    rows.push([r.id, r.path, fmt(r.lines), fmt(r.linesPerCpuSecond), fmt(baseline), fmt(r.R, 3), `≥ ${fmt(r.target, 2)}`, r.pass ? 'PASS' : 'FAIL']);
  }
  const out: string[] = ['', table(rows), ''];
  if (results.some((r) => r.id !== 'R3')) out.push(`note: R1/R2 — ${RAW_ROWS_NOTE}.`);
  out.push(
    `baseline: JSON.parse of the ${fmt(json.measured.length)} measured lines, best of ${passes.length} passes in two fresh processes ` +
      `(before and after the product runs; median ${fmt(median(passes.map((p) => p.linesPerSec)))} lines/s).`,
  );
  for (const r of results) {
    const split = r.threads.filter((t) => t.pct >= 0.5).map((t) => `${t.name} ${fmt(t.pct)}%`).join(', ');
    out.push(
      `${r.id}: ${fmt(1e6 / r.linesPerCpuSecond, 1)} CPU-µs per line; ${fmt(r.cpuSeconds, 2)} CPU-s in ${fmt(r.wallSeconds, 2)} s wall ` +
        `(${fmt(r.wallLinesPerSecond)} lines/s); 429 retries ${r.send.retries}; request p50/p99 ${fmt(r.send.latencyMs.p50)}/${fmt(r.send.latencyMs.p99)} ms; ` +
        `+${fmt(r.settleCpuSeconds, 2)} CPU-s in the ${SETTLE_MS / 1000} s after`,
    );
    out.push(`  CPU by thread: ${split}`);
    if (r.profile) {
      out.push(`  main thread profile (self time): ${r.profile.areas.slice(0, 8).map((a) => `${a.name} ${fmt(a.selfPct, 1)}%`).join(', ')}`);
    }
  }
  if (series) {
    out.push(
      `memory per active series: ${fmt(series.bytesPerSeries)} B of heap (${fmt(series.heapDeltaBytes / 2 ** 20, 1)} MiB / ${fmt(series.newLabelSets)} new label sets; ` +
        `held: ${Object.entries(series.labelSets).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')})`,
    );
    out.push(
      `/metrics at ${fmt(Object.values(series.labelSets).reduce((a, b) => a + b, 0))} label sets (${fmt(series.scrapeSamples)} samples, ${fmt(series.scrapeBytes / 1024)} KiB): ` +
        `in-process stall p50 ${fmt(series.scrapeInProcessMs.p50, 1)} ms, max ${fmt(series.scrapeInProcessMs.max, 1)} ms (target ≤ 50 ms: ${series.pass ? 'PASS' : 'FAIL'}), ` +
        `rendering p50 ${fmt(series.scrapeTotalMs.p50, 1)} ms; ` +
        `HTTP GET p50 ${fmt(series.scrapeHttpMs.p50, 1)} ms, max ${fmt(series.scrapeHttpMs.max, 1)} ms`,
    );
  }
  out.push('not measured yet: ingest p99 at 80 % of R1 saturation (CONTRACT.md §8).');
  process.stdout.write(`${out.join('\n')}\n`);

  const file = join(RESULTS_DIR, 'latest.json');
  writeFileSync(
    file,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.version, platform: process.platform },
        options: { ...o, only: [...o.only], linesPerRequest: LINES_PER_REQUEST },
        baseline: {
          what: 'JSON.parse of each measured Istio JSON line in a tight loop, lines per wall second, in a fresh process before and after the product runs (warm-up pass dropped)',
          used: 'best',
          linesPerSecond: baseline,
          medianLinesPerSecond: median(passes.map((p) => p.linesPerSec)),
          passes,
        },
        results: results.map((r) => ({ ...r, includesRawRows: true })),
        series,
      },
      null,
      2,
    ),
  );
  log(`results written to ${file}`);
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
