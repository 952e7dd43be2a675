/**
 * The process under test: meshlens all-in-one (`start()`, exactly what `npm start` runs), started by the
 * benchmark in a child process so that the load generator's CPU is not counted as meshlens'. It answers
 * the benchmark's questions over the IPC channel: process CPU (which includes chDB's own threads: CONTRACT.md §8
 * says process-CPU-second), when every sent line is stored, what the store and /metrics hold, heap after GC,
 * series counts, scrape timings, and how many rows ClickHouse read (for the history query).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { performance } from 'node:perf_hooks';
import type { Counter } from 'prom-client';
import { start, type Running } from '../bin/start';
import { createLogger, loadConfig } from '../lib/runtime';

export type ServerRequest =
  | { op: 'cpu' }
  | { op: 'waitAccepted'; target: number; timeoutMs: number }
  | { op: 'reads' }
  | { op: 'sql'; query: string }
  | { op: 'heap' }
  | { op: 'series' }
  | { op: 'scrape'; times: number }
  | { op: 'verify' }
  | { op: 'profileStart' }
  | { op: 'profileStop'; path: string }
  | { op: 'stop' };

export interface CpuSnapshot {
  /** process.cpuUsage(), µs: every thread of the process, chDB's included. */
  user: number;
  system: number;
  wallMs: number;
  /** `meshlens_ingest_records_total{outcome="accepted"}` at that moment (see acceptedRecords). */
  accepted: number;
  /** Per-thread CPU from /proc (Linux), clock ticks, by thread name; {} elsewhere. */
  threads: Record<string, number>;
  /** Batches of request records the aggregator has stored (one insert each into every table it writes). */
  requestBatches: number;
}

export interface OutcomeCounts {
  ok: number;
  error: number;
  denied: number;
}

/** What the store and /metrics hold, read after a run (every count is of access-log records). */
export interface VerifyResult {
  /** Raw `requests` table, by outcome. */
  raw: OutcomeCounts & { rows: number };
  /** `ok` raw rows whose request id also has an `error` or `denied` raw row (kept with their request's). */
  rawOkWithNonOkPartner: number;
  /**
   * `requests_rollup_1m`, each side's own rows (reporter `all`, the joined view, counts the same requests again):
   * its rows as stored (before merges) and the counts they add up to.
   */
  rollup: { rows: number; requests: number; errors: number; denied: number };
  /** `meshlens_requests_total`, summed, and by its `outcome` label. */
  metrics: OutcomeCounts & { total: number };
  /** `meshlens_ingest_records_total` by outcome. */
  ingest: { accepted: number; rejected: number };
}

/** ClickHouse's own counters of rows and bytes read by queries (system.events), process-wide since start. */
export interface ReadCounters {
  selectedRows: number;
  selectedBytes: number;
  selectedParts: number;
  selectedMarks: number;
}

export interface ScrapeResult {
  /** How long each `registry.metrics()` took, start to end. */
  ms: number[];
  /** The longest the event loop was held during each: what ingest and queries waited at most. */
  stallMs: number[];
  bytes: number;
  samples: number;
}

/**
 * Runs `fn` while a chain of setImmediate callbacks notes the longest gap between two turns of the event
 * loop: the stall `fn` caused, however it splits its work.
 */
async function withStallMeter<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; stallMs: number }> {
  let last = performance.now();
  let worst = 0;
  let running = true;
  const tick = (): void => {
    const t = performance.now();
    worst = Math.max(worst, t - last);
    last = t;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const start = performance.now();
  const value = await fn();
  const end = performance.now();
  running = false;
  worst = Math.max(worst, end - last);
  return { value, ms: end - start, stallMs: worst };
}

type Envelope = { id: number } & ServerRequest;

declare const gc: undefined | (() => void);

/**
 * The end-of-measurement signal: records the receivers accepted, counted once their publish resolved. On the
 * all-in-one's memory bus a publish resolves only when every consumer group committed the records, and the
 * aggregator commits a batch after it stored it (raw rows as sampled, rollups) and added it to the metrics, so
 * this count reaching the number sent means all of it was stored and counted, whatever
 * MESHLENS_RAW_REQUESTS keeps as raw rows (`meshlens_store_rows_total{table="requests"}` counts only the raw
 * rows kept). It is a plain prom-client counter with a handful of label sets, cheap to read every 5 ms; summing
 * `meshlens_requests_total` would read back every label set (100k of them in the scaling runs) on each poll
 * and bill that to the process under measurement. `verify` checks the metric sums afterwards.
 */
function acceptedRecords(running: Running): Promise<number> {
  return sumOf(running, 'meshlens_ingest_records_total', (l) => l.outcome === 'accepted');
}

/** `meshlens_store_insert_duration_seconds_count{table="requests"}`: one per consumed batch of request records. */
async function requestBatches(running: Running): Promise<number> {
  const metric = running.registry.getSingleMetric('meshlens_store_insert_duration_seconds');
  if (!metric) return 0;
  const { values } = await (metric as Counter).get();
  let n = 0;
  for (const v of values) if ((v as { metricName?: string }).metricName?.endsWith('_count') && v.labels.table === 'requests') n += v.value;
  return n;
}

async function sumOf(running: Running, name: string, filter?: (labels: Record<string, string | number>) => boolean): Promise<number> {
  const metric = running.registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await (metric as Counter).get();
  let n = 0;
  for (const v of values) if (!filter || filter(v.labels as Record<string, string | number>)) n += v.value;
  return n;
}

/**
 * Threads that existed when the process started (the launcher lists them before loading any module). Node's
 * own (V8's platform workers: GC, compiler) are all named `node`, and so are libuv's pool threads, created
 * later on first use, on which chDB runs every query; the pool threads are told apart by not being there.
 */
let startupThreads = new Set<string>();

function listThreads(): string[] {
  try {
    return readdirSync('/proc/self/task');
  } catch {
    return [];
  }
}

function threadGroup(tid: string, comm: string): string {
  if (tid === String(process.pid)) return 'main (JS)';
  if (comm.startsWith('v8:')) return 'V8 profiler';
  if (comm === 'node') return startupThreads.has(tid) ? 'V8 platform (GC, JIT)' : 'libuv pool (chDB queries)';
  // ClickHouse names its threads (ThreadPool, MergeMutate, ChunkParser, …); numbered ones are one group.
  return `chDB ${comm.replace(/[\d_-]+$/, '')}`;
}

/** CPU ticks per thread group since the threads started (threads that ended are gone: best effort). */
function threadTicks(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of listThreads()) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // Fields after the `(comm)`: state is field 3, utime 14, stime 15 (1-based, man 5 proc).
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(rest[11]) + Number(rest[12]);
      const comm = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const name = threadGroup(tid, comm);
      out[name] = (out[name] ?? 0) + ticks;
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}

async function snapshot(running: Running): Promise<CpuSnapshot> {
  const cpu = process.cpuUsage();
  const wallMs = performance.now();
  const threads = threadTicks();
  return { user: cpu.user, system: cpu.system, wallMs, accepted: await acceptedRecords(running), threads, requestBatches: await requestBatches(running) };
}

function collectGarbage(): void {
  if (typeof gc === 'function') {
    gc();
    gc();
  }
}

export async function runServer(threadsAtStart: string[]): Promise<void> {
  startupThreads = new Set(threadsAtStart);
  const send = (msg: object): void => {
    process.send?.(msg);
  };
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, 'meshlens-bench');
  const running = await start({ config, target: 'all', logger });
  const aggregator = running.aggregator;
  if (!aggregator) throw new Error('bench: the all target started without an aggregator');
  let session: Session | undefined;

  const handle = async (req: ServerRequest): Promise<unknown> => {
    switch (req.op) {
      case 'cpu':
        return snapshot(running);
      case 'waitAccepted': {
        const deadline = performance.now() + req.timeoutMs;
        for (;;) {
          // Read CPU the moment the count is reached: polling every 5 ms bounds the overshoot.
          const accepted = await acceptedRecords(running);
          if (accepted >= req.target) return snapshot(running);
          if (performance.now() > deadline) throw new Error(`timed out: ${accepted} of ${req.target} records stored and counted`);
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      case 'heap':
        collectGarbage();
        return process.memoryUsage();
      case 'series':
        return aggregator.metrics.seriesCounts();
      case 'scrape': {
        const ms: number[] = [];
        const stallMs: number[] = [];
        let text = '';
        // What GET /metrics does: render the pieces it streams (lib/runtime/http.ts).
        const registry = running.registry;
        for (let i = 0; i < req.times; i++) {
          const r = await withStallMeter(() => registry.metricsChunks());
          text = r.value.join('');
          ms.push(r.ms);
          stallMs.push(r.stallMs);
        }
        let samples = 0;
        for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10 && text.charCodeAt(i + 1) !== 35 /* # */) samples++;
        return { ms, stallMs, bytes: Buffer.byteLength(text), samples } satisfies ScrapeResult;
      }
      case 'verify':
        return verify(running, aggregator.conn);
      case 'reads': {
        const rows = await query<{ event: string; value: number | string }>(
          aggregator.conn,
          `SELECT event, value FROM system.events WHERE event IN ('SelectedRows', 'SelectedBytes', 'SelectedParts', 'SelectedMarks')`,
        );
        const get = (name: string): number => Number(rows.find((r) => r.event === name)?.value ?? 0);
        return {
          selectedRows: get('SelectedRows'),
          selectedBytes: get('SelectedBytes'),
          selectedParts: get('SelectedParts'),
          selectedMarks: get('SelectedMarks'),
        } satisfies ReadCounters;
      }
      case 'sql':
        return query(aggregator.conn, req.query.replace(/\{db\}/g, aggregator.conn.database));
      case 'profileStart':
        session = new Session();
        session.connect();
        await post(session, 'Profiler.enable');
        await post(session, 'Profiler.setSamplingInterval', { interval: 200 });
        await post(session, 'Profiler.start');
        return {};
      case 'profileStop': {
        if (!session) throw new Error('no profile running');
        const { profile } = (await post(session, 'Profiler.stop')) as { profile: unknown };
        writeFileSync(req.path, JSON.stringify(profile));
        session.disconnect();
        session = undefined;
        return { path: req.path };
      }
      case 'stop':
        await running.close();
        return {};
    }
  };

  process.on('message', (msg: Envelope) => {
    handle(msg).then(
      (value) => {
        send({ id: msg.id, ok: true, value });
        if (msg.op === 'stop') setImmediate(() => process.exit(0));
      },
      (err: unknown) => send({ id: msg.id, ok: false, error: (err as Error).stack ?? String(err) }),
    );
  });
  // The bench is gone (killed, crashed): nobody will ask this meshlens to stop, so it stops itself.
  process.once('disconnect', () => process.exit(1));
  send({ id: 0, ok: true, value: { ready: true, ports: running.ports } });
}

type Conn = NonNullable<Running['aggregator']>['conn'];

async function query<T>(conn: Conn, sql: string): Promise<T[]> {
  const rs = await conn.client.query({ query: sql, format: 'JSONEachRow' });
  return rs.json<T>();
}

/**
 * A rollup count column as a number, whatever state it holds: `finalizeAggregation` of each stored row's state
 * (count, countIf or sum alike; counts add up across rows), or the plain value of a SimpleAggregateFunction or
 * number column. Keeps the check independent of how the writer chooses to fill the rollup.
 */
async function rollupSumExpr(conn: Conn, table: string, column: string): Promise<string> {
  const rows = await query<{ type: string }>(
    conn,
    `SELECT type FROM system.columns WHERE database = '${conn.database}' AND table = '${table}' AND name = '${column}'`,
  );
  const type = rows[0]?.type;
  if (type === undefined) throw new Error(`${table} has no column ${column}`);
  return type.startsWith('AggregateFunction') ? `sum(finalizeAggregation(${column}))` : `sum(${column})`;
}

async function verify(running: Running, conn: Conn): Promise<VerifyResult> {
  const db = conn.database;
  const num = (v: number | string | undefined): number => Number(v ?? 0);
  type Row = Record<string, number | string>;
  const [raw] = await query<Row>(
    conn,
    `SELECT count() AS rows, countIf(outcome = 'ok') AS ok, countIf(outcome = 'error') AS error, countIf(outcome = 'denied') AS denied FROM ${db}.requests`,
  );
  const [partners] = await query<Row>(
    conn,
    `SELECT count() AS n FROM ${db}.requests WHERE outcome = 'ok' AND requestId != ''
       AND requestId IN (SELECT requestId FROM ${db}.requests WHERE outcome != 'ok' AND requestId != '')`,
  );
  const [requests, errors, denied] = await Promise.all(['requests', 'errors', 'denied'].map((c) => rollupSumExpr(conn, 'requests_rollup_1m', c)));
  const [rollup] = await query<Row>(
    conn,
    `SELECT count() AS rows, ${requests} AS requests, ${errors} AS errors, ${denied} AS denied FROM ${db}.requests_rollup_1m WHERE reporter != 'all'`,
  );
  const byOutcome = (o: string) => sumOf(running, 'meshlens_requests_total', (l) => l.outcome === o);
  return {
    raw: { rows: num(raw?.rows), ok: num(raw?.ok), error: num(raw?.error), denied: num(raw?.denied) },
    rawOkWithNonOkPartner: num(partners?.n),
    rollup: { rows: num(rollup?.rows), requests: num(rollup?.requests), errors: num(rollup?.errors), denied: num(rollup?.denied) },
    metrics: {
      total: await sumOf(running, 'meshlens_requests_total'),
      ok: await byOutcome('ok'),
      error: await byOutcome('error'),
      denied: await byOutcome('denied'),
    },
    ingest: {
      accepted: await acceptedRecords(running),
      rejected: await sumOf(running, 'meshlens_ingest_records_total', (l) => l.outcome === 'rejected'),
    },
  };
}

function post(session: Session, method: string, params?: object): Promise<unknown> {
  return new Promise((resolve, reject) => {
    session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result)));
  });
}
