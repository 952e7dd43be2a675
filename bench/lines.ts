/**
 * The lines the benchmark sends. Throughput paths use the seeded traffic simulator (services/simulator): a
 * Bookinfo-like mesh with both reporters, a canary subset, failures, denials and egress to BlackHole, written
 * as the sidecars print it with no log shipper around the line (`shipper: 'none'`). The same seed with
 * `jsonShare` 1 or 0 gives the same requests as Istio JSON (typed values, Istio's default encoding since 1.9)
 * or as Istio TEXT, so R1 and R2 measure the same traffic in two encodings.
 *
 * The series phase needs many label sets, which a Bookinfo mesh does not have: `cardinalityLines` writes
 * client-side JSON lines to `destinations` distinct hosts x subsets with a few response codes each.
 */
import { createTrafficGenerator } from '../services/simulator/generator';

export type Encoding = 'json' | 'text';

export interface LineSet {
  /** The first `warmup` lines are sent before measuring (JIT, ClickHouse parts, series creation). */
  warmup: string[];
  measured: string[];
}

/** Root requests per second of event time: ~6 access-log lines each, so 300k lines span ~8 minutes. */
const SIM_RPS = 100;

/**
 * `warmup + measured` lines in one encoding, event times starting `spanBackMs` before `nowMs` (inside every
 * ClickHouse TTL, and in the past so no minute rollup is "in the future").
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
  // ~6.4 lines per root request; generate in chunks until there are enough, then cut at exactly `total`.
  while (lines.length < total) {
    const b = gen.next(Math.max(1000, Math.ceil((total - lines.length) / 6)));
    const got = encoding === 'json' ? b.jsonLines : b.textLines;
    for (const l of got) lines.push(l);
  }
  lines.length = total;
  return { warmup: lines.slice(0, warmup), measured: lines.slice(warmup) };
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
export function cardinalityLines(destinations: number, nowMs: number): string[] {
  const out: string[] = [];
  const subsets = 3;
  const base = nowMs - 120_000;
  for (let d = 0; d < destinations; d++) {
    const svc = Math.floor(d / subsets);
    const ns = `bench-ns-${svc % 20}`;
    const host = `svc-${svc}.${ns}.svc.cluster.local`;
    const subset = `v${(d % subsets) + 1}`;
    for (let c = 0; c < SERIES_CODES.length; c++) {
      const code = SERIES_CODES[c] as number;
      const i = d * SERIES_CODES.length + c;
      out.push(
        JSON.stringify({
          start_time: new Date(base + (i % 60_000)).toISOString(),
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
          request_id: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
          authority: `svc-${svc}.${ns}:9080`,
          upstream_host: `10.${(svc >> 8) & 255}.${svc & 255}.${(d % subsets) + 10}:9080`,
          upstream_cluster: `outbound|9080|${subset}|${host}`,
          upstream_local_address: '10.1.0.5:40000',
          downstream_local_address: '10.96.0.10:9080',
          downstream_remote_address: '10.1.0.5:50000',
          requested_server_name: null,
          upstream_transport_failure_reason: null,
        }),
      );
    }
  }
  return out;
}
