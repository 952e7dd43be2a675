/**
 * The query API's SQL (CONTRACT.md §6). Parameters only: user input reaches ClickHouse as typed query
 * parameters (`{name:Type}`), never as SQL text; the database name is a validated identifier from config.
 *
 * Exact answers for any window: whole minutes come from the per-minute rollups the aggregator writes, the partial
 * minutes at the window's edges from the raw tables, and both are summed alike, so a 30 s window and a 30-day
 * window use the same rules. One rollup, requests_rollup_1m, answers the subsets, the graph, the canaries and the
 * ledger; `reporter=all` (a request both sidecars reported is one request: same `x-request-id` on the same hop, and
 * the destination's verdict wins) has its rows there under reporter `all`, paired as records arrive; raw rows are
 * paired only at the edges. With raw rows sampled
 * away (MESHLENS_RAW_REQUESTS), windows are widened to whole minutes (countableScope) and read rollups alone.
 */
import type { Connection } from './client';

export type ReporterFilter = 'source' | 'destination' | 'all';

export interface QueryScope {
  fromMs: number;
  toMs: number;
  /** Destination namespace; '' for all. */
  namespace: string;
  /** Destination service name; '' for all. */
  service: string;
  reporter: ReporterFilter;
}

export interface SubsetRow {
  namespace: string;
  service: string;
  host: string;
  subset: string;
  requests: number;
  /** Outcome `error`: application 5xx and mesh-generated failures alike (CONTRACT.md §4). */
  errors: number;
  denied: number;
  /** Errors without an upstream-failure response flag: the application answered 5xx. */
  appErrors: number;
  /** Not denied, with an upstream-failure flag (UH, UF, URX, NR...): the proxy failed the request itself. */
  meshFailures: number;
  /** Nearest-rank quantiles of the durations (ms); null when none is known (see `latencySamples`). */
  latencyMs: { p50: number | null; p90: number | null; p99: number | null };
  /**
   * How many durations the quantiles rest on: `requests`, less those of minutes rolled up before the latency
   * histogram existed (migration 004), whose durations are not kept.
   */
  latencySamples?: number;
}

/** One canary subset judged against its baseline subset of the same host. */
export interface LatencyPair {
  host: string;
  baseline: string;
  canary: string;
}

/** Mann-Whitney U of the canary's request durations against the baseline's, one-sided (canary slower). */
export interface LatencyShiftRow extends LatencyPair {
  baselineCount: number;
  canaryCount: number;
  baselineMedianMs: number;
  canaryMedianMs: number;
  /** P-value of "the canary's durations are stochastically greater"; 1 when either sample is empty. */
  pValue: number;
}

export interface EdgeRow {
  sourceNamespace: string;
  sourceWorkload: string;
  destinationNamespace: string;
  destinationService: string;
  destinationHost: string;
  subset: string;
  requests: number;
  errors: number;
  denied: number;
  p99Ms: number | null;
}

/** A call seen only in traces: a CLIENT span whose hop no access log reported (e.g. logs not shipped). */
export interface SpanEdgeRow {
  /** The calling side's `service.name` / Zipkin `localEndpoint.serviceName` (Istio: `<app>.<namespace>`). */
  caller: string;
  destinationNamespace: string;
  destinationService: string;
  destinationHost: string;
  subset: string;
  requests: number;
  errors: number;
  p99Ms: number | null;
}

export type Layer = 'L7' | 'L4';

/** One row per (flow, verdict, deny reason, policy, rule); the API folds them into ledger entries. */
export interface LedgerRow {
  layer: Layer;
  sourceNamespace: string;
  sourceWorkload: string;
  destinationNamespace: string;
  destinationService: string;
  destinationHost: string;
  subset: string;
  port: number;
  denied: boolean;
  denyReason: string;
  policy: string;
  rule: number;
  count: number;
}

/** Bounds on one statement: `max_execution_time` (CONTRACT.md §9). */
export interface QueryLimits {
  /** Milliseconds, rounded up to whole seconds; default DEFAULT_QUERY_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** The bound when the caller names none (MESHLENS_QUERY_TIMEOUT's default). */
export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;

/** ClickHouse settings of a query under `limits`: every read is bounded, whoever asks. */
function bounded(limits: QueryLimits | undefined): { max_execution_time: number } {
  return { max_execution_time: Math.max(1, Math.ceil((limits?.timeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS) / 1000)) };
}

const MINUTE_MS = 60_000;

/**
 * Latency quantiles by nearest rank: the duration at rank ceil(q·n) of the n sorted durations, as operators count
 * (the p99 of {84, 10273} ms is 10273). Durations are kept as a log-bucketed histogram, the DDSketch mapping with
 * relative accuracy α: bucket i = ceil(log_γ(ms)) holds (γ^(i−1), γ^i], γ = (1+α)/(1−α), and its representative
 * 2γ^i/(γ+1) is within α of every value in it. Histograms merge by adding counts, so rollup minutes, raw rows and
 * the joined view give the same answer for the same durations; the answer is within 1 % of the exact one.
 * clickhouse/migrations/004_add_latency_buckets_and_flow_workloads.sql writes the same buckets.
 */
export const LATENCY_ACCURACY = 0.01;
const GAMMA = (1 + LATENCY_ACCURACY) / (1 - LATENCY_ACCURACY);
const LOG_GAMMA = Math.log(GAMMA);
/** The bucket of durations ≤ 0 (Envoy logs 0 ms for what took under a millisecond); its representative is 0. */
export const ZERO_BUCKET = -32768;
const MAX_BUCKET = 32767;

/** A duration's bucket, as the SQL below computes it (Int16: from about 1e-285 ms to 1e285 ms). */
export function latencyBucket(ms: number): number {
  if (!(ms > 0)) return ZERO_BUCKET;
  return Math.max(-MAX_BUCKET, Math.min(MAX_BUCKET, Math.ceil(Math.log(ms) / LOG_GAMMA)));
}

/** The value a bucket stands for: 2γ^i/(γ+1), within α of everything in it; 0 for the zero bucket. */
export function bucketValue(bucket: number): number {
  return bucket === ZERO_BUCKET ? 0 : (2 * Math.pow(GAMMA, bucket)) / (GAMMA + 1);
}

/** `latencyBucket` in SQL, for a Float64 column of milliseconds. */
export const LATENCY_BUCKET_SQL = (col: string): string =>
  `if(${col} > 0, toInt16(greatest(-32767, least(32767, ceil(log(${col}) / log(1.01 / 0.99))))), toInt16(-32768))`;

/** A histogram of raw rows' durations, as the rollup keeps it. */
const HISTOGRAM = `sumMap(map(${LATENCY_BUCKET_SQL('durationMs')}, toInt64(1)))`;

/**
 * The nearest-rank `percent`-th percentile of a histogram (bucket → count, as ClickHouse returns a Map): the
 * representative of the bucket holding rank ceil(percent·n/100); null for an empty histogram. Integer percent, so
 * the rank is exact (0.99·100 is not 99 in floating point).
 */
export function nearestRank(histogram: Readonly<Record<string, number>>, percent: number): number | null {
  const buckets = Object.entries(histogram)
    .map(([k, n]) => [Number(k), Number(n)] as const)
    .filter(([, n]) => n > 0)
    .sort((a, b) => a[0] - b[0]);
  const total = buckets.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil((percent * total) / 100));
  let seen = 0;
  for (const [bucket, n] of buckets) {
    seen += n;
    if (seen >= rank) return bucketValue(bucket);
  }
  return null;
}

const samples = (histogram: Readonly<Record<string, number>>): number => Object.values(histogram).reduce((sum, n) => sum + Number(n), 0);

/**
 * The window the store counts exactly when `rawRequests` (MESHLENS_RAW_REQUESTS) of the `ok` requests keep raw
 * rows: `scope` itself when all do; otherwise the whole minutes it touches, answered from the rollups alone, since
 * the raw rows left cannot count the partial minutes at its edges.
 */
export function countableScope(scope: QueryScope, rawRequests = 1): QueryScope {
  if (rawRequests >= 1) return scope;
  return { ...scope, fromMs: Math.floor(scope.fromMs / MINUTE_MS) * MINUTE_MS, toMs: Math.ceil(scope.toMs / MINUTE_MS) * MINUTE_MS };
}

interface Split {
  /** Whole minutes [rollupFrom, rollupTo) in seconds, empty when rollupFrom >= rollupTo. */
  rollupFrom: number;
  rollupTo: number;
  /** Raw ranges [from, rawA) and [rawB, to) in milliseconds. */
  rawA: number;
  rawB: number;
}

/** Where a window is read from: whole minutes from rollups, the rest from raw rows. */
export function splitWindow(fromMs: number, toMs: number): Split {
  const ceil = Math.ceil(fromMs / MINUTE_MS) * MINUTE_MS;
  const floor = Math.floor(toMs / MINUTE_MS) * MINUTE_MS;
  if (ceil >= floor) return { rollupFrom: 0, rollupTo: 0, rawA: toMs, rawB: toMs };
  return { rollupFrom: ceil / 1000, rollupTo: floor / 1000, rawA: ceil, rawB: floor };
}

/**
 * Whether a window has partial minutes at its edges, read from raw rows. A window of whole minutes (every window
 * when raw rows are sampled: countableScope) leaves the raw branches out of the query: ClickHouse would still pair
 * the raw rows within the pairing reach of its edges, or build the set of their hops, only to keep none.
 */
function hasPartialEdges(scope: QueryScope): boolean {
  const s = splitWindow(scope.fromMs, scope.toMs);
  return s.rawA > scope.fromMs || s.rawB < scope.toMs;
}

function params(scope: QueryScope): Record<string, unknown> {
  const s = splitWindow(scope.fromMs, scope.toMs);
  return {
    from: scope.fromMs,
    to: scope.toMs,
    rollupFrom: s.rollupFrom,
    rollupTo: s.rollupTo,
    rawA: s.rawA,
    rawB: s.rawB,
    namespace: scope.namespace,
    service: scope.service,
    reporter: scope.reporter,
    pairFrom: scope.fromMs - PAIRING_REACH_MS,
    pairTo: scope.toMs + PAIRING_REACH_MS,
    pairA: s.rawA + PAIRING_REACH_MS,
    pairB: s.rawB - PAIRING_REACH_MS,
  };
}

/**
 * How far outside a window's partial edge minutes a request's other record, or a span's access log, is looked for
 * among raw rows: the aggregator's pairing window (lib/store/pairing.ts, lib/store/spanedges.ts), so both decide alike.
 */
const PAIRING_REACH_MS = 5 * 60_000;

/**
 * A missing name as /metrics labels it, `unknown` (Istio's convention, CONTRACT.md §5): rows stored by older
 * versions or other parsers may hold '' for a namespace, workload, service or host, so the mapping is done when
 * reading. The subset is not a name: '' means the request named none.
 */
const known = (col: string): string => `if(${col} = '', 'unknown', ${col})`;
const NAMES = new Set(['sourceWorkload', 'sourceNamespace', 'destinationNamespace', 'destinationService', 'destinationHost']);
/** A key column as the answers spell it, under its own name. */
const spelled = (col: string): string => (NAMES.has(col) ? `${known(col)} AS ${col}` : col);

/** `namespace=unknown` finds both spellings; '' asks for every namespace (and service). */
const matches = (col: string, param: string): string =>
  `({${param}:String} = '' OR ${col} = {${param}:String} OR ({${param}:String} = 'unknown' AND ${col} = ''))`;
const DEST_FILTER = `${matches('destinationNamespace', 'namespace')} AND ${matches('destinationService', 'service')}`;
const RAW_TIME = (col = 'timestamp'): string =>
  `${col} >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND ${col} < fromUnixTimestamp64Milli({to:Int64}, 'UTC')`;
const RAW_EDGES =
  `((timestamp >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND timestamp < fromUnixTimestamp64Milli({rawA:Int64}, 'UTC'))` +
  ` OR (timestamp >= fromUnixTimestamp64Milli({rawB:Int64}, 'UTC') AND timestamp < fromUnixTimestamp64Milli({to:Int64}, 'UTC')))`;
const ROLLUP_TIME = `minute >= toDateTime({rollupFrom:UInt32}, 'UTC') AND minute < toDateTime({rollupTo:UInt32}, 'UTC')`;

/** The columns a request contributes to the answers, raw or paired (in this order). */
const REQUEST_COLUMNS = [
  'sourceWorkload',
  'sourceNamespace',
  'destinationNamespace',
  'destinationService',
  'destinationHost',
  'destinationSubset',
  'destinationPort',
  'protocol',
  'durationMs',
  'outcome',
  'meshFailure',
  'denyReason',
  'policy',
  'rule',
] as const;

/** Raw rows that may pair with a record of the window's edges: a long window reads its edges, not its middle. */
const PAIR_EDGES =
  `((timestamp >= fromUnixTimestamp64Milli({pairFrom:Int64}, 'UTC') AND timestamp < fromUnixTimestamp64Milli({pairA:Int64}, 'UTC'))` +
  ` OR (timestamp >= fromUnixTimestamp64Milli({pairB:Int64}, 'UTC') AND timestamp < fromUnixTimestamp64Milli({pairTo:Int64}, 'UTC')))`;

/**
 * `reporter=all`: one row per request (CONTRACT.md §6), for the records whose own time meets `ownTime`, their
 * partners looked for among the rows `pairTime` selects. Records of one request id on one hop (destination
 * namespace and service) are numbered per side by start time, and the i-th source record is paired with the
 * i-th destination record: Envoy logs one client line per downstream request and one server line per attempt,
 * so a retried request is one pair plus the attempts only the server saw, and an application that retries with
 * the id it was given logs two pairs. A pair is its source record — caller, host, port, protocol, latency and
 * subset (the destination's where the source names none) — with the destination's verdict when that denied it
 * (policy is enforced there), else the source's outcome and failure class. A record without a partner counts as
 * its side saw it; records without a request id (TCP) or with reporter `unknown` cannot be paired and count one each.
 *
 * Two window passes, no GROUP BY on the strings: number the records per (request id, hop, side), then bring the
 * destination record's verdict onto its source partner and keep source records and unpartnered destination ones.
 * Partitions lead with a 64-bit hash so the sort compares strings only on ties (3× faster than grouping).
 * A pair counts at its source record's time, an unpaired record at its own, as the aggregator's joined view
 * (lib/store/pairing.ts) counts them, so the two add up at a window's edges.
 */
function pairedRequests(db: string, ownTime: string, pairTime: string): string {
  const cols = REQUEST_COLUMNS.join(', ');
  const hop = 'requestId, destinationNamespace, destinationService';
  const VERDICT = ['outcome', 'meshFailure', 'denyReason', 'policy', 'rule'];
  // The destination partner's values, on every record of the pair (alias `partner_<col>`).
  const partner = [...VERDICT, 'destinationSubset'].map((c) => `anyIf(${c}, reporter = 'destination') OVER pair AS partner_${c}`).join(', ');
  const verdict = VERDICT.map((c) => `if(deniedThere, partner_${c}, ${c}) AS ${c}`).join(', ');
  return `
    SELECT sourceWorkload, sourceNamespace, destinationNamespace, destinationService, destinationHost,
      if(destinationSubset = '', partner_destinationSubset, destinationSubset) AS destinationSubset,
      destinationPort, protocol, durationMs, ${verdict}
    FROM (
      SELECT *, reporter = 'source' AND partner_outcome = 'denied' AS deniedThere
      FROM (
        SELECT *, countIf(reporter = 'source') OVER pair AS sources, ${partner}
        FROM (
          SELECT ${cols}, requestId, reporter, timestamp,
            row_number() OVER (PARTITION BY cityHash64(${hop}, reporter), ${hop}, reporter
              ORDER BY startTimeMs, durationMs, responseCode) AS attempt
          FROM ${db}.requests
          WHERE ${pairTime} AND ${DEST_FILTER} AND requestId != '' AND reporter IN ('source', 'destination')
        )
        WINDOW pair AS (PARTITION BY cityHash64(${hop}, attempt), ${hop}, attempt)
      )
      WHERE (reporter = 'source' OR sources = 0) AND ${ownTime}
    )
    UNION ALL
    SELECT ${cols} FROM ${db}.requests
    WHERE ${ownTime} AND ${DEST_FILTER} AND (requestId = '' OR reporter NOT IN ('source', 'destination'))`;
}

/** Raw rows' RED columns, per group (signed counts, so they add to the joined view's rows). */
const RAW_COUNTS = `toInt64(count()) AS requests, toInt64(countIf(outcome = 'error')) AS errors, toInt64(countIf(outcome = 'denied')) AS denied,
      toInt64(countIf(outcome = 'error' AND NOT meshFailure)) AS appErrors, toInt64(countIf(meshFailure)) AS meshFailures,
      ${HISTOGRAM} AS latencyBuckets`;

/**
 * Per-group RED counts as rows to be summed by the caller: whole minutes from requests_rollup_1m (every row of the
 * reporter, `all` for the joined view; RED_ONLY rows too), the partial minutes at the window's edges from raw rows
 * (paired for `all`, each pair counted at its source record's time, as the aggregator counts it).
 */
function redCounts(db: string, keys: string[], reporter: ReporterFilter): string {
  const k = keys.join(', ');
  // Keys are spelled in each branch; the caller's GROUP BY merges '' and `unknown` into one group.
  const named = keys.map(spelled).join(', ');
  const edges =
    reporter === 'all'
      ? `SELECT ${named}, ${RAW_COUNTS} FROM (${pairedRequests(db, RAW_EDGES, PAIR_EDGES)}) GROUP BY ${k}`
      : `SELECT ${named}, ${RAW_COUNTS} FROM ${db}.requests
    WHERE ${RAW_EDGES} AND reporter = {reporter:String} AND ${DEST_FILTER}
    GROUP BY ${k}`;
  return `
    SELECT ${named}, sum(requests) AS requests, sum(errors) AS errors, sum(denied) AS denied,
      sum(appErrors) AS appErrors, sum(meshFailures) AS meshFailures, sumMap(latencyBuckets) AS latencyBuckets
    FROM ${db}.requests_rollup_1m
    WHERE ${ROLLUP_TIME} AND reporter = {reporter:String} AND ${DEST_FILTER}
    GROUP BY ${k}
    UNION ALL
    ${edges}`;
}

async function rows<T>(conn: Connection, query: string, scope: QueryScope, limits: QueryLimits | undefined): Promise<T[]> {
  const rs = await conn.client.query({ query, query_params: params(scope), format: 'JSONEachRow', clickhouse_settings: bounded(limits) });
  return rs.json<T>();
}

type Histogram = Record<string, number>;

export async function querySubsets(conn: Connection, scope: QueryScope, limits?: QueryLimits): Promise<SubsetRow[]> {
  const keys = ['destinationNamespace', 'destinationService', 'destinationHost', 'destinationSubset'];
  const query = `
    SELECT destinationNamespace AS namespace, destinationService AS service, destinationHost AS host, destinationSubset AS subset,
      sum(requests) AS requests, sum(errors) AS errors, sum(denied) AS denied,
      sum(appErrors) AS appErrors, sum(meshFailures) AS meshFailures,
      sumMap(latencyBuckets) AS h
    FROM (${redCounts(conn.database, keys, scope.reporter)})
    GROUP BY namespace, service, host, subset
    HAVING sum(requests) != 0
    ORDER BY namespace, service, host, subset`;
  const result = await rows<Omit<SubsetRow, 'latencyMs'> & { h: Histogram }>(conn, query, scope, limits);
  return result.map(({ h, ...r }) => ({
    ...r,
    latencyMs: { p50: nearestRank(h, 50), p90: nearestRank(h, 90), p99: nearestRank(h, 99) },
    latencySamples: samples(h),
  }));
}

export async function queryEdges(conn: Connection, scope: QueryScope, limits?: QueryLimits): Promise<EdgeRow[]> {
  const keys = ['sourceNamespace', 'sourceWorkload', 'destinationNamespace', 'destinationService', 'destinationHost', 'destinationSubset'];
  const query = `
    SELECT sourceNamespace, sourceWorkload, destinationNamespace, destinationService, destinationHost, destinationSubset AS subset,
      sum(requests) AS requests, sum(errors) AS errors, sum(denied) AS denied,
      sumMap(latencyBuckets) AS h
    FROM (${redCounts(conn.database, keys, scope.reporter)})
    GROUP BY sourceNamespace, sourceWorkload, destinationNamespace, destinationService, destinationHost, subset
    -- The joined view's signed rows: a lone server-side record is counted under the server's view of the caller and
    -- taken back when the client's record comes, which leaves that caller's group at zero, not an edge.
    HAVING sum(requests) != 0
    ORDER BY sourceNamespace, sourceWorkload, destinationNamespace, destinationService, subset`;
  const result = await rows<Omit<EdgeRow, 'p99Ms'> & { h: Histogram }>(conn, query, scope, limits);
  return result.map(({ h, ...r }) => ({ ...r, p99Ms: nearestRank(h, 99) }));
}

/**
 * Mann-Whitney U tests of request durations, canary against baseline, for every pair in one pass over the raw
 * rows (ClickHouse's `mannWhitneyUTest`, as Kayenta's judge uses): each row joins the pairs its (host, subset)
 * belongs to, a baseline row every pair of its host. Raw rows, not rollups: the test ranks every duration.
 * `reporter=all` reads the client side's rows, the latency the caller saw (as the deduplicated subsets do).
 */
export async function queryLatencyShifts(
  conn: Connection,
  scope: QueryScope,
  pairs: readonly LatencyPair[],
  limits?: QueryLimits,
): Promise<LatencyShiftRow[]> {
  if (pairs.length === 0) return [];
  const keys = new Map<string, { host: string; subset: string; pairs: number[] }>();
  pairs.forEach((p, i) => {
    for (const subset of [p.baseline, p.canary]) {
      const id = `${p.host}\u0000${subset}`;
      const k = keys.get(id) ?? { host: p.host, subset, pairs: [] };
      k.pairs.push(i + 1);
      keys.set(id, k);
    }
  });
  const list = [...keys.values()];
  const KEYS = 'arrayZip({hosts:Array(String)}, {subsets:Array(String)})';
  const pairRows = `
    SELECT durationMs,
      arrayJoin({pairsOf:Array(Array(UInt32))}[indexOf(${KEYS}, (${known('destinationHost')}, destinationSubset))]) AS pair,
      destinationSubset = {baselines:Array(String)}[pair] AS isBaseline
    FROM ${conn.database}.requests
    WHERE ${RAW_TIME()} AND reporter = {reporter:String} AND has(${KEYS}, (${known('destinationHost')}, destinationSubset))`;
  // The canary is sample 0, so 'greater' asks whether its durations are stochastically greater. ClickHouse
  // refuses an empty sample, so pairs with one (raw rows expired, say) are left out of the test (-IfOrNull).
  const query = `
    SELECT pair,
      countIf(isBaseline) AS baselineCount, countIf(NOT isBaseline) AS canaryCount,
      quantileExactIf(0.5)(durationMs, isBaseline) AS baselineMedianMs, quantileExactIf(0.5)(durationMs, NOT isBaseline) AS canaryMedianMs,
      mannWhitneyUTestIfOrNull('greater')(durationMs, toUInt8(isBaseline), testable).2 AS pValue
    FROM (
      SELECT *, pair IN (SELECT pair FROM (${pairRows}) GROUP BY pair HAVING countIf(isBaseline) > 0 AND countIf(NOT isBaseline) > 0) AS testable
      FROM (${pairRows})
    )
    GROUP BY pair`;
  const rs = await conn.client.query({
    query,
    format: 'JSONEachRow',
    clickhouse_settings: bounded(limits),
    query_params: {
      ...params(scope),
      reporter: scope.reporter === 'all' ? 'source' : scope.reporter,
      hosts: list.map((k) => k.host),
      subsets: list.map((k) => k.subset),
      pairsOf: list.map((k) => k.pairs),
      baselines: pairs.map((p) => p.baseline),
    },
  });
  const found = new Map((await rs.json<Omit<LatencyShiftRow, keyof LatencyPair> & { pair: number }>()).map((r) => [r.pair, r]));
  return pairs.map((p, i) => {
    const r = found.get(i + 1);
    return {
      ...p,
      baselineCount: r?.baselineCount ?? 0,
      canaryCount: r?.canaryCount ?? 0,
      baselineMedianMs: r?.baselineMedianMs ?? 0,
      canaryMedianMs: r?.canaryMedianMs ?? 0,
      pValue: Number.isFinite(r?.pValue) ? (r?.pValue as number) : 1,
    };
  });
}

/**
 * Edges only traces know of: CLIENT spans (destination from their upstream cluster) whose hop — request id and
 * destination service — no access log reported. Access-log edges need no trace; spans add the calls whose sidecar
 * logs are not shipped to meshlens. Whole minutes come from span_edges_1m, where the aggregator decided each span as
 * it came (lib/store/spanedges.ts: a log of its hop within the pairing window, before or after it, takes it back),
 * so no raw request row is needed and a long window reads minutes. The partial minutes at the window's edges come
 * from the raw spans, a hop logged when a raw request row within the pairing reach of the edges has it (only with
 * every raw row kept: otherwise countableScope widens the window to whole minutes and there are no partial ones).
 */
/**
 * Span-only calls among the raw spans of the partial edge minutes. Only the hops of those spans are looked up among
 * the raw request rows, so the set ClickHouse builds is the size of the traced calls, not of every request.
 */
function rawSpanEdges(db: string): string {
  const calls = `${RAW_EDGES} AND ${DEST_FILTER} AND kind = 'client' AND destinationService != ''`;
  return `
    SELECT ${known('serviceName')} AS caller, ${['destinationNamespace', 'destinationService', 'destinationHost', 'destinationSubset'].map(spelled).join(', ')},
      toInt64(1) AS requests, toInt64(error) AS errors, map(${LATENCY_BUCKET_SQL('durationMs')}, toInt64(1)) AS latencyBuckets
    FROM ${db}.spans
    WHERE ${calls}
      AND (requestId = '' OR (requestId, destinationService) NOT IN (
        SELECT requestId, destinationService FROM ${db}.requests
        WHERE ${PAIR_EDGES} AND requestId IN (SELECT requestId FROM ${db}.spans WHERE ${calls} AND requestId != '')))`;
}

export async function querySpanEdges(conn: Connection, scope: QueryScope, limits?: QueryLimits): Promise<SpanEdgeRow[]> {
  const db = conn.database;
  const names = ['destinationNamespace', 'destinationService', 'destinationHost', 'destinationSubset'].map(spelled).join(', ');
  const query = `
    SELECT caller, destinationNamespace, destinationService, destinationHost, destinationSubset AS subset,
      sum(requests) AS requests, sum(errors) AS errors, sumMap(latencyBuckets) AS h
    FROM (
      SELECT ${known('serviceName')} AS caller, ${names}, requests, errors, CAST(latencyBuckets, 'Map(Int16, Int64)') AS latencyBuckets
      FROM ${db}.span_edges_1m
      WHERE ${ROLLUP_TIME} AND ${DEST_FILTER}
      ${hasPartialEdges(scope) ? `UNION ALL ${rawSpanEdges(db)}` : ''}
    )
    GROUP BY caller, destinationNamespace, destinationService, destinationHost, subset
    HAVING sum(requests) != 0
    ORDER BY caller, destinationNamespace, destinationService, subset`;
  const result = await rows<Omit<SpanEdgeRow, 'p99Ms'> & { h: Histogram }>(conn, query, scope, limits);
  return result.map(({ h, ...r }) => ({ ...r, p99Ms: nearestRank(h, 99) }));
}

/** A flow-log row's identity in the ledger: the same in the rollup and in the raw table. */
const FLOW_KEYS =
  'sourceNamespace, sourceWorkload, destinationNamespace, destinationService, destinationHost, destinationWorkload, destinationPort, verdict, denyReason, policy, rule';

/**
 * Flow-log connections per minute and reporter, counted once for `reporter=all` (CONTRACT.md §6). Calico reports a
 * connection from both nodes (`reporter` src and dst) and Hubble at the source's egress and the destination's
 * ingress; both are aggregates with a count, so pairing is per (flow, minute): the source workload, the destination
 * namespace, workload and port, in one minute of event time. The destination node often sees only the pod (Calico
 * writes no dest_service_name there), so the destination workload is what both records share; a record without one
 * (and rollup minutes from before migration 004) meets on the destination service instead.
 *
 * Within a (flow, minute): every destination record counts with its own verdict (policy is enforced there);
 * connections the source denied never reached the destination and count as the source saw them; of the connections
 * the source let out, as many as the destination reported are the destination's, and only the surplus (connections
 * the destination did not report) counts as the source's `allowed`. Records with reporter `unknown` count as they
 * are. A paired destination record takes the name the source gave the destination (the Service it dialed). A
 * connection whose two records fall in different minutes is counted on both sides.
 *
 * With `reporter=source` or `destination` only one side is read and every record counts.
 */
function pairedFlows(db: string): string {
  const WHO = ['sourceNamespace', 'sourceWorkload', 'destinationNamespace', 'destinationService', 'destinationHost'].map(spelled).join(', ');
  const sides = `({reporter:String} = 'all' OR reporter = {reporter:String})`;
  const rest = 'destinationWorkload, destinationPort, verdict, denyReason, policy, rule';
  return `
    SELECT sourceNamespace, sourceWorkload, destinationNamespace,
      if(reporter = 'destination' AND named.1 != '', named.1, destinationService) AS destinationService,
      if(reporter = 'destination' AND named.1 != '', named.2, destinationHost) AS destinationHost,
      destinationPort, verdict, denyReason, policy, rule,
      toUInt64(if(reporter = 'source' AND verdict = 'allowed',
        greatest(0, least(toInt64(count), toInt64(sentBefore) + toInt64(count) - toInt64(reported))),
        count)) AS count
    FROM (
      SELECT *,
        sumIf(count, reporter = 'destination') OVER connection AS reported,
        sumIf(count, reporter = 'source' AND verdict = 'allowed') OVER (connection
          ORDER BY destinationService, destinationHost, policy, rule, verdict, denyReason, reporter
          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS sentBefore,
        minIf((destinationService, destinationHost), reporter = 'source') OVER connection AS named
      FROM (
        SELECT minute, reporter, ${WHO}, ${rest}, count,
          if(destinationWorkload IN ('', 'unknown'), ${known('destinationService')}, destinationWorkload) AS peer
        FROM (
          SELECT minute, reporter, ${FLOW_KEYS}, sumMerge(connections) AS count FROM ${db}.flows_1m
          WHERE ${ROLLUP_TIME} AND ${DEST_FILTER} AND ${sides}
          GROUP BY minute, reporter, ${FLOW_KEYS}
          UNION ALL
          SELECT toStartOfMinute(toDateTime(timestamp, 'UTC')) AS minute, reporter, ${FLOW_KEYS}, sum(count) AS count FROM ${db}.flows
          WHERE ${RAW_EDGES} AND ${DEST_FILTER} AND ${sides}
          GROUP BY minute, reporter, ${FLOW_KEYS}
        )
      )
      WINDOW connection AS (PARTITION BY minute, sourceNamespace, sourceWorkload, destinationNamespace, peer, destinationPort)
    )`;
}

/**
 * The allowed/denied ledger: L7 from access logs (TCP access-log records count as L4) and L4 from flow logs,
 * one row per verdict detail. Whole minutes come from the rollups the aggregator writes — requests_rollup_1m
 * (per reporter, or the joined view's rows under reporter `all`: each request once, the destination's verdict when
 * it denied; not the RED_ONLY rows, outcome '') and flows_1m — so every request counts whatever raw rows are
 * kept; the partial minutes at the window's edges from raw rows (paired for `all`, each pair at its source
 * record's time as the aggregator counts it). `reporter=all` counts each connection once too (pairedFlows), with
 * the destination's verdict.
 */
export async function queryLedger(conn: Connection, scope: QueryScope, limits?: QueryLimits): Promise<LedgerRow[]> {
  const db = conn.database;
  const edgeRows =
    scope.reporter === 'all'
      ? `(${pairedRequests(db, RAW_EDGES, PAIR_EDGES)})`
      : `(SELECT * FROM ${db}.requests WHERE ${RAW_EDGES} AND ${DEST_FILTER} AND reporter = {reporter:String})`;
  const names = (cols: string[]): string => cols.map(spelled).join(', ');
  const WHO = ['sourceNamespace', 'sourceWorkload', 'destinationNamespace', 'destinationService', 'destinationHost'];
  const L7 = (count: string): string =>
    `SELECT if(protocol = 'tcp', 'L4', 'L7') AS layer, ${names(WHO)}, destinationSubset AS subset, destinationPort AS port,
        outcome = 'denied' AS denied, denyReason, policy, rule, ${count} AS count`;
  // Signed sums (the joined view takes back what a record counted alone once its partner comes): a detail is
  // kept when its sum over the window is positive.
  const query = `
    SELECT layer, sourceNamespace, sourceWorkload, destinationNamespace, destinationService, destinationHost, subset, port,
      denied, denyReason, policy, rule, sum(count) AS count
    FROM (
      ${L7('requests')} FROM ${db}.requests_rollup_1m
      WHERE ${ROLLUP_TIME} AND ${DEST_FILTER} AND reporter = {reporter:String} AND outcome != ''
      ${hasPartialEdges(scope) ? `UNION ALL ${L7('toInt64(1)')} FROM ${edgeRows}` : ''}
      UNION ALL
      SELECT 'L4' AS layer, ${WHO.join(', ')}, '' AS subset, destinationPort AS port, verdict = 'denied' AS denied, denyReason, policy, rule,
        toInt64(count) AS count
      FROM (${pairedFlows(db)})
    )
    GROUP BY layer, sourceNamespace, sourceWorkload, destinationNamespace, destinationService, destinationHost, subset, port,
      denied, denyReason, policy, rule
    HAVING sum(count) > 0`;
  const result = await rows<Omit<LedgerRow, 'denied'> & { denied: number | boolean }>(conn, query, scope, limits);
  return result.map((r) => ({ ...r, denied: r.denied === true || r.denied === 1 }));
}
