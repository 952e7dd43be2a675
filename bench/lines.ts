/**
 * The lines the benchmark sends. Throughput paths use the seeded traffic simulator (simulator/): a
 * Bookinfo-like mesh with both reporters, a canary subset, failures, denials and egress to BlackHole, written
 * as the sidecars print it with no log shipper around the line (`shipper: 'none'`). The same seed with
 * `jsonShare` 1 or 0 gives the same requests as Istio JSON (typed values, Istio's default encoding since 1.9)
 * or as Istio TEXT, so R1 and R2 measure the same traffic in two encodings.
 *
 * The series and scaling phases need many label sets, which a Bookinfo mesh does not have: `cardinalityLines`
 * writes client-side JSON lines to `destinations` distinct hosts x subsets with a few response codes each, and
 * `seriesTrafficLines` keeps sending to those same label sets. The history phase spreads simulated Bookinfo
 * traffic over 30 days (`historyLines`).
 */
import { createTrafficGenerator } from '../simulator';
import type { OutcomeCounts } from './server';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

export type Encoding = 'json' | 'text';

export interface LineSet {
  /** The first `warmup` lines are sent before measuring (JIT, ClickHouse parts, series creation). */
  warmup: string[];
  measured: string[];
  /**
   * What the simulator meant every line of `warmup` + `measured` to be (its ground truth, not a parse of its
   * own output): how many records are ok, error and denied. The raw rows MESHLENS_RAW_REQUESTS=0 must keep are
   * the error and denied ones.
   */
  outcomes: OutcomeCounts;
}

/** Root requests per second of event time: ~6 access-log lines each, so 300k lines span ~8 minutes. */
const SIM_RPS = 100;

/**
 * At least `warmup + measured` lines in one encoding (the measured part may be a few lines longer: generation
 * stops after a whole root request, so the ground truth covers exactly the lines sent), event times starting
 * `spanBackMs` before `nowMs` (inside every ClickHouse TTL, and in the past so no minute rollup is "in the
 * future").
 */
export function simulatedLines(encoding: Encoding, seed: number, warmup: number, measured: number, nowMs: number): LineSet {
  const total = warmup + measured;
  const gen = createTrafficGenerator({
    seed,
    startTimeMs: nowMs - spanBackMs(total),
    rps: SIM_RPS,
    jsonShare: encoding === 'json' ? 1 : 0,
    shipper: 'none',
    traceSampling: 0,
  });
  const lines: string[] = [];
  // ~6.4 lines per root request (at most ~10): big chunks while far from `total`, one root at a time near it.
  while (lines.length < total) {
    const b = gen.next(Math.max(1, Math.floor((total - lines.length) / 12)));
    const got = encoding === 'json' ? b.jsonLines : b.textLines;
    for (const l of got) lines.push(l);
  }
  const outcomes: OutcomeCounts = { ok: 0, error: 0, denied: 0 };
  for (const s of gen.truth().requests_total) outcomes[s.labels.outcome] += s.value;
  const counted = outcomes.ok + outcomes.error + outcomes.denied;
  if (counted !== lines.length) throw new Error(`simulator truth counts ${counted} records for ${lines.length} lines`);
  return { warmup: lines.slice(0, warmup), measured: lines.slice(warmup), outcomes };
}

/** Event time the simulated traffic spans, plus a margin: generation starts that far back. */
function spanBackMs(lines: number): number {
  return Math.ceil((lines / 6 / SIM_RPS) * 1000) + 120_000;
}

/** Response codes per destination in the series phase (ok, client error, server error). */
const SERIES_CODES = [200, 404, 503] as const;

/**
 * Istio JSON lines (typed values) from one client reporter to `destinations` distinct (host, subset) pairs,
 * each with every code of SERIES_CODES: that many duration series and 3x that many request series.
 * Deterministic; no randomness needed.
 */
export function cardinalityLines(destinations: number, nowMs: number, requestIds = true): string[] {
  const out: string[] = [];
  const base = nowMs - 120_000;
  for (let d = 0; d < destinations; d++) {
    for (let c = 0; c < SERIES_CODES.length; c++) {
      const i = d * SERIES_CODES.length + c;
      out.push(destinationLine(d, c, i, base + (i % 60_000), requestIds));
    }
  }
  return out;
}

/**
 * `count` more lines to the label sets of `cardinalityLines(destinations)`, round robin, so every series keeps
 * being updated; request ids continue from `firstId` (unique across both), event times evenly spread over
 * [fromMs, toMs).
 */
export function seriesTrafficLines(destinations: number, count: number, firstId: number, fromMs: number, toMs: number): string[] {
  const out: string[] = [];
  const labelSets = destinations * SERIES_CODES.length;
  for (let j = 0; j < count; j++) {
    const k = j % labelSets;
    out.push(destinationLine(Math.floor(k / SERIES_CODES.length), k % SERIES_CODES.length, firstId + j, fromMs + Math.floor(((toMs - fromMs) * j) / count)));
  }
  return out;
}

/**
 * One client-side line to destination `d` (host svc-<d/3>, subset v1..v3) with code SERIES_CODES[c]; `i` names the
 * request (its id, unless `requestId` is false: the line then has none, as a sidecar without tracing headers logs).
 */
function destinationLine(d: number, c: number, i: number, timeMs: number, requestId = true): string {
  const subsets = 3;
  const svc = Math.floor(d / subsets);
  const ns = `bench-ns-${svc % 20}`;
  const host = `svc-${svc}.${ns}.svc.cluster.local`;
  const subset = `v${(d % subsets) + 1}`;
  const code = SERIES_CODES[c] as number;
  return JSON.stringify({
    start_time: new Date(timeMs).toISOString(),
    route_name: 'default',
    method: 'GET',
    path: `/api/${svc}`,
    protocol: 'HTTP/1.1',
    response_code: code,
    response_flags: code === 503 ? 'UF' : '-',
    response_code_details: code === 503 ? 'upstream_reset_before_response_started{connection_failure}' : 'via_upstream',
    connection_termination_details: null,
    bytes_received: 0,
    bytes_sent: 100 + (i % 900),
    duration: 1 + (i % 250),
    upstream_service_time: code === 503 ? null : String(i % 250),
    x_forwarded_for: null,
    user_agent: 'bench/1.0',
    request_id: requestId ? `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}` : null,
    authority: `svc-${svc}.${ns}:9080`,
    upstream_host: `10.${(svc >> 8) & 255}.${svc & 255}.${(d % subsets) + 10}:9080`,
    upstream_cluster: `outbound|9080|${subset}|${host}`,
    upstream_local_address: '10.1.0.5:40000',
    downstream_local_address: '10.96.0.10:9080',
    downstream_remote_address: '10.1.0.5:50000',
    requested_server_name: null,
    upstream_transport_failure_reason: null,
  });
}

/** Where the history lies: its first and last burst, as offsets from the moment the lines are generated. */
export interface HistorySpan {
  firstMs: number;
  lastMs: number;
}

/**
 * About `total` Istio JSON lines of simulated Bookinfo traffic over the `days` days before `nowMs`: one burst per
 * hour (a generator of its own per burst, seeded from `seed` and the hour, at 200 root requests per second of
 * event time, so a burst lasts a second or two). Bursts rather than a thin even spread: a rollup row sums a
 * minute of one key, and with a bench-sized line count spread over all 43,200 minutes of 30 days nearly every
 * line would be a rollup row of its own, so the rollup would hold as many rows as the raw table and reading
 * either would look the same. Hourly bursts keep every day of the period populated and give a rollup row tens of
 * records, as a real mesh's minutes have far more. The first burst is 30 minutes inside the period, so a 30-day
 * window asked some minutes later still covers it; the last is an hour before `nowMs`.
 */
export function historyLines(seed: number, total: number, days: number, nowMs: number): { lines: string[]; span: HistorySpan } {
  const bursts = days * 24;
  const perBurst = Math.max(1, Math.ceil(total / bursts));
  const first = nowMs - days * DAY_MS + 30 * MINUTE_MS;
  const lines: string[] = [];
  let last = first;
  for (let h = 0; h < bursts; h++) {
    last = first + h * HOUR_MS;
    const gen = createTrafficGenerator({ seed: (seed + h) >>> 0, startTimeMs: last, rps: 200, jsonShare: 1, shipper: 'none', traceSampling: 0 });
    let n = 0;
    while (n < perBurst) {
      const b = gen.next(Math.max(1, Math.floor((perBurst - n) / 12)));
      for (const l of b.jsonLines) lines.push(l);
      n += b.jsonLines.length;
    }
  }
  return { lines, span: { firstMs: first, lastMs: last } };
}
