/**
 * The bench phases beyond throughput: ingest latency under an open-loop load (p99), how CPU per line and query
 * time grow with active series (scaling), and a query over 30 days of stored history (history). Each runs its
 * own fresh meshlens child (bench/child.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HOST, STORE_TIMEOUT_MS, Server } from './child';
import { historyLines, cardinalityLines, seriesTrafficLines, type HistorySpan, type LineSet } from './lines';
import { makeBodies, sendAll, timeGets, type SendResult } from './load';
import { openLoop, type OpenLoopResult } from './openloop';
import { summarizeProfile, type ProfileSummary } from './profile';
import type { CpuSnapshot, ReadCounters, VerifyResult } from './server';
import { checkStored, type StoredCheck } from './verify';

export const LINES_PER_REQUEST = 500;
const NDJSON = 'application/x-ndjson';
const DAY_MS = 86_400_000;

export function cpuSeconds(a: CpuSnapshot, b: CpuSnapshot): number {
  return (b.user + b.system - a.user - a.system) / 1e6;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.floor((s.length - 1) / 2)] as number);
}

function sendLines(port: number, lines: readonly string[], concurrency: number, contentType = NDJSON): Promise<SendResult> {
  return sendAll(makeBodies(lines, LINES_PER_REQUEST), { host: HOST, port, path: '/v1/accesslogs', contentType, concurrency });
}

/** Verifies what the child stored and counted; throws (the bench could not measure) when it does not add up. */
export async function verified(server: Server, phase: string, accepted: number, rawShare: number): Promise<{ verify: VerifyResult; check: StoredCheck }> {
  const verify = await server.call<VerifyResult>({ op: 'verify' });
  const check = checkStored(verify, accepted, rawShare);
  if (check.problems.length > 0) throw new Error(`${phase}: the run did not store what was sent: ${check.problems.join('; ')}`);
  return { verify, check };
}

// ---------------------------------------------------------------------------------------------------
// p99: ingest latency at a fixed rate
// ---------------------------------------------------------------------------------------------------

export interface P99Options {
  /** Offered load, lines per second. */
  rateLinesPerSecond: number;
  /** Where the rate comes from, for the report. */
  basis: string;
  seconds: number;
  concurrency: number;
  targetMs: number;
}

export interface P99Result {
  rateLinesPerSecond: number;
  basis: string;
  requestsPerSecond: number;
  seconds: number;
  open: OpenLoopResult;
  /** meshlens' CPU over the open-loop phase, and its average use in cores (2 = both cores of this machine). */
  cpuSeconds: number;
  coresUsed: number;
  targetMs: number;
  pass: boolean;
  check: StoredCheck;
}

/**
 * R3's conditions (the default MESHLENS_RAW_REQUESTS, every raw row stored): a closed-loop warm-up, then bodies
 * of 500 lines at a fixed rate for `seconds`, cycling through the measured lines (re-sent lines are new records
 * to meshlens: the same request ids again, stored again).
 */
export async function runP99(set: LineSet, o: P99Options): Promise<P99Result> {
  const server = Server.spawn();
  try {
    const { ports } = await server.ready;
    const warm = await sendLines(ports.http, set.warmup, o.concurrency);
    await server.call({ op: 'waitAccepted', target: warm.accepted, timeoutMs: STORE_TIMEOUT_MS });
    // Whole bodies only, so the offered rate in lines is exact.
    const bodies = makeBodies(set.measured, LINES_PER_REQUEST).filter((b) => b.lines === LINES_PER_REQUEST);
    const requestsPerSecond = o.rateLinesPerSecond / LINES_PER_REQUEST;
    const c0 = await server.call<CpuSnapshot>({ op: 'cpu' });
    const open = await openLoop(bodies, {
      host: HOST,
      port: ports.http,
      path: '/v1/accesslogs',
      contentType: NDJSON,
      requestsPerSecond,
      durationMs: o.seconds * 1000,
      lateMs: o.targetMs,
      drainMs: 60_000,
    });
    const complete = open.unanswered === 0 && open.failed === 0;
    // Requests cut off unanswered may or may not have been stored: then only the process's own counts can agree.
    const c1 = await server.call<CpuSnapshot>({
      op: 'waitAccepted',
      target: warm.accepted + open.accepted,
      timeoutMs: STORE_TIMEOUT_MS,
    });
    const accepted = complete ? warm.accepted + open.accepted : c1.accepted;
    const { check } = await verified(server, 'p99', accepted, 1);
    const cpu = cpuSeconds(c0, c1);
    return {
      rateLinesPerSecond: o.rateLinesPerSecond,
      basis: o.basis,
      requestsPerSecond,
      seconds: o.seconds,
      open,
      cpuSeconds: cpu,
      coresUsed: cpu / ((c1.wallMs - c0.wallMs) / 1000),
      targetMs: o.targetMs,
      pass: complete && open.latencyMs.p99 <= o.targetMs,
      check,
    };
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------------
// Scaling: CPU per line and query time against active series
// ---------------------------------------------------------------------------------------------------

export interface ScalingRow {
  /** The size asked for; `activeSeries` is what meshlens held. */
  targetSeries: number;
  destinations: number;
  activeSeries: number;
  seriesCounts: Record<string, number>;
  /** MESHLENS_MAX_SERIES given to the child (per metric family). */
  maxSeries: number;
  createLines: number;
  lines: number;
  cpuSeconds: number;
  cpuUsPerLine: number;
  wallLinesPerSecond: number;
  subsetsMs: { p50: number; max: number };
  graphMs: { p50: number; max: number };
  subsetsBytes: number;
  graphBytes: number;
  rawRows: StoredCheck['rawRows'];
  /** With --profile: meshlens' main thread while creating the label sets, and while measuring. */
  profiles?: { create: ProfileSummary; measured: ProfileSummary };
}

const QUERY_REPEATS = 5;

/** Runs `fn` under a CPU profile of the child's main thread, written to `dir/<name>.cpuprofile`, and summarizes it. */
async function profiled<T>(server: Server, dir: string | undefined, name: string, fn: () => Promise<T>): Promise<{ value: T; profile?: ProfileSummary }> {
  if (dir === undefined) return { value: await fn() };
  await server.call({ op: 'profileStart' });
  const value = await fn();
  const path = join(dir, `${name}.cpuprofile`);
  await server.call({ op: 'profileStop', path });
  return { value, profile: summarizeProfile(JSON.parse(readFileSync(path, 'utf8'))) };
}

/**
 * One fresh meshlens per size. Series are made by `cardinalityLines` (destinations x 3 codes: 4 label sets per
 * destination across meshlens_requests_total and meshlens_request_duration_seconds); that first pass is not
 * measured (it also pays for creating the series). The measured lines then go round robin to the same label
 * sets, so every series stays active, with event times in the last ~3 minutes; the queries ask for the last
 * 5 minutes with the API's defaults. MESHLENS_MAX_SERIES is raised where the default cap (50,000 per family)
 * would fold the largest size into `__overflow__`: measuring 100k series needs 100k series. The canary judge
 * runs once an hour (MESHLENS_CANARY_INTERVAL) so its queries, every 30 s by default and heavier with every
 * host, do not land at random inside the measured pass or beside the timed queries.
 */
export async function runScaling(
  sizes: readonly number[],
  lines: number,
  concurrency: number,
  log: (m: string) => void,
  profileDir?: string,
): Promise<ScalingRow[]> {
  const rows: ScalingRow[] = [];
  for (const target of sizes) {
    const destinations = Math.max(1, Math.round(target / 4));
    const maxSeries = Math.max(50_000, destinations * 3 + 1_000);
    const server = Server.spawn({ MESHLENS_MAX_SERIES: String(maxSeries), MESHLENS_CANARY_INTERVAL: '1h' });
    try {
      const { ports } = await server.ready;
      const now = Date.now();
      const create = cardinalityLines(destinations, now);
      log(`scaling ${target}: creating ${destinations * 4} label sets (${create.length} lines), then ${lines} measured lines`);
      const t0 = performance.now();
      const created = await profiled(server, profileDir, `scaling-${target}-create`, async () => {
        const r = await sendLines(ports.http, create, concurrency);
        await server.call({ op: 'waitAccepted', target: r.accepted, timeoutMs: STORE_TIMEOUT_MS });
        return r;
      });
      const warm = created.value;
      log(`scaling ${target}: label sets created in ${((performance.now() - t0) / 1000).toFixed(1)} s, measuring`);
      // Event times from now on, not from before the (possibly long) creation pass: the queries' 5 minutes must hold them.
      const sendAt = Date.now();
      const traffic = seriesTrafficLines(destinations, lines, create.length, sendAt - 180_000, sendAt - 5_000);
      const measured = await profiled(server, profileDir, `scaling-${target}-measured`, async () => {
        const c0 = await server.call<CpuSnapshot>({ op: 'cpu' });
        const sent = await sendLines(ports.http, traffic, concurrency);
        const c1 = await server.call<CpuSnapshot>({ op: 'waitAccepted', target: warm.accepted + sent.accepted, timeoutMs: STORE_TIMEOUT_MS });
        return { c0, c1, sent };
      });
      const { c0, c1, sent } = measured.value;
      const seriesCounts = await server.call<Record<string, number>>({ op: 'series' });
      const { check } = await verified(server, `scaling ${target}`, warm.accepted + sent.accepted, 1);
      log(`scaling ${target}: ${sent.accepted} lines stored, querying`);
      const subsets = await timeGets(ports.http, HOST, '/api/v1/subsets?window=5m', QUERY_REPEATS);
      const graph = await timeGets(ports.http, HOST, '/api/v1/graph?window=5m', QUERY_REPEATS);
      const cpu = cpuSeconds(c0, c1);
      rows.push({
        targetSeries: target,
        destinations,
        activeSeries: Object.values(seriesCounts).reduce((a, b) => a + b, 0),
        seriesCounts,
        maxSeries,
        createLines: create.length,
        lines: sent.accepted,
        cpuSeconds: cpu,
        cpuUsPerLine: (cpu * 1e6) / sent.accepted,
        wallLinesPerSecond: sent.accepted / ((c1.wallMs - c0.wallMs) / 1000),
        subsetsMs: { p50: median(subsets.ms), max: Math.max(...subsets.ms) },
        graphMs: { p50: median(graph.ms), max: Math.max(...graph.ms) },
        subsetsBytes: subsets.bytes,
        graphBytes: graph.bytes,
        rawRows: check.rawRows,
        ...(created.profile && measured.profile ? { profiles: { create: created.profile, measured: measured.profile } } : {}),
      });
    } finally {
      await server.stop();
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------
// History: a query over 30 days
// ---------------------------------------------------------------------------------------------------

export interface HistoryQuery {
  name: string;
  /** The request, with `from`/`to` of its last run. */
  path: string;
  ms: { p50: number; max: number };
  /** Rows ClickHouse read for it (fewest over the runs), from system.events SelectedRows. */
  readRows: number;
  readBytes: number;
  /** What reading rollups (plus raw rows at the window's edges) can read at most: rollup rows + raw rows of the edge days. */
  bound: number;
  /** readRows ≤ bound: it did not read the period's raw rows. */
  pass: boolean;
}

export interface HistoryResult {
  days: number;
  lines: number;
  span: { first: string; last: string };
  rawRows: number;
  rollupRows: number;
  /** Raw rows in the days the window's two edges fall on (partitions are days). */
  edgeDayRawRows: number;
  /** Rows the system.events read itself counts, subtracted from every figure. */
  counterOverheadRows: number;
  queries: HistoryQuery[];
  ingestWallSeconds: number;
  pass: boolean;
}

const HISTORY_QUERIES = [
  { name: 'subsets (default reporter=all)', path: '/api/v1/subsets' },
  { name: 'subsets reporter=source', path: '/api/v1/subsets', extra: '&reporter=source' },
  { name: 'graph (default reporter=all)', path: '/api/v1/graph' },
  { name: 'graph reporter=source', path: '/api/v1/graph', extra: '&reporter=source' },
] as const;

/**
 * `lines` of history over `days` days (historyLines: hourly bursts of simulated Bookinfo traffic), sent through
 * `POST /v1/accesslogs` like any traffic. The child keeps raw rows for days + 5 (MESHLENS_RAW_RETENTION_DAYS;
 * the default 7 would reject the older lines as too_old) and stores every raw row (MESHLENS_RAW_REQUESTS
 * default), so the raw table really holds the period and a query that reads it shows. The canary judge is
 * pushed to once an hour so its queries stay out of the read counts.
 *
 * Rows read: ClickHouse counts the rows every query reads (`SelectedRows` in system.events; chDB keeps no
 * system.query_log). The bench reads that counter right before and after each API call, with nothing else
 * running in the child, and subtracts what reading the counter itself adds.
 */
export async function runHistory(seed: number, lines: number, days: number, concurrency: number, log: (m: string) => void): Promise<HistoryResult> {
  const history = historyLines(seed, lines, days, Date.now());
  const server = Server.spawn({ MESHLENS_RAW_RETENTION_DAYS: String(days + 5), MESHLENS_CANARY_INTERVAL: '1h' });
  try {
    const { ports } = await server.ready;
    log(`history: sending ${history.lines.length} lines over ${days} days`);
    const t0 = performance.now();
    const sent = await sendLines(ports.http, history.lines, concurrency);
    await server.call({ op: 'waitAccepted', target: sent.accepted, timeoutMs: STORE_TIMEOUT_MS * 3 });
    const ingestWallSeconds = (performance.now() - t0) / 1000;
    if (sent.accepted !== history.lines.length) throw new Error(`history: ${sent.accepted} of ${history.lines.length} lines accepted`);
    await verified(server, 'history', sent.accepted, 1);
    // Let the parts of the last inserts settle before counting what is there.
    await new Promise((r) => setTimeout(r, 2_000));
    const count = async (sql: string): Promise<number> => Number((await server.call<{ n: number | string }[]>({ op: 'sql', query: sql }))[0]?.n ?? 0);
    const rawRows = await count('SELECT count() AS n FROM {db}.requests');
    const rollupRows = await count('SELECT count() AS n FROM {db}.requests_rollup_1m');
    const r0 = await server.call<ReadCounters>({ op: 'reads' });
    const r1 = await server.call<ReadCounters>({ op: 'reads' });
    const overhead = r1.selectedRows - r0.selectedRows;
    let edgeDayRawRows = 0;
    const queries: HistoryQuery[] = [];
    for (const q of HISTORY_QUERIES) {
      const ms: number[] = [];
      let readRows = Infinity;
      let readBytes = 0;
      let path = '';
      for (let i = 0; i < 3; i++) {
        const to = Date.now();
        const from = to - days * DAY_MS;
        path = `${q.path}?from=${from}&to=${to}${'extra' in q ? q.extra : ''}`;
        const before = await server.call<ReadCounters>({ op: 'reads' });
        const got = await timeGets(ports.http, HOST, path, 1);
        const after = await server.call<ReadCounters>({ op: 'reads' });
        ms.push(got.ms[0] as number);
        const rows = after.selectedRows - before.selectedRows - overhead;
        if (rows < readRows) {
          readRows = rows;
          readBytes = after.selectedBytes - before.selectedBytes;
        }
        edgeDayRawRows = await count(
          `SELECT count() AS n FROM {db}.requests WHERE toDate(timestamp) IN (toDate(fromUnixTimestamp64Milli(${from}, 'UTC')), toDate(fromUnixTimestamp64Milli(${to}, 'UTC')))`,
        );
      }
      const bound = rollupRows + edgeDayRawRows;
      queries.push({ name: q.name, path, ms: { p50: median(ms), max: Math.max(...ms) }, readRows, readBytes, bound, pass: readRows <= bound });
    }
    return {
      days,
      lines: sent.accepted,
      span: spanText(history.span),
      rawRows,
      rollupRows,
      edgeDayRawRows,
      counterOverheadRows: overhead,
      queries,
      ingestWallSeconds,
      pass: queries.every((q) => q.pass),
    };
  } finally {
    await server.stop();
  }
}

function spanText(s: HistorySpan): { first: string; last: string } {
  return { first: new Date(s.firstMs).toISOString(), last: new Date(s.lastMs).toISOString() };
}
