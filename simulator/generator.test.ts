/**
 * The simulator's output against meshlens's real parsers: every line parses, and the truth recomputed from the
 * parsed records (not from the generator) equals the truth the generator reports.
 */
import { flagsLabel, orUnknown } from '../lib/model';
import type { Flow, MeshRequest, Span } from '../lib/model';
import { parseAccessLogLine, parseFlowLine, parseZipkin } from '../services/ingest';
import { createTrafficGenerator, simulate, type Simulation } from './generator';
import type { FlowTruth, GroundTruth, RequestsTotalSample, SubsetTruth } from './truth';

const START = Date.UTC(2026, 2, 14, 9, 0, 0);

function parsedRequests(lines: readonly string[], format: string): MeshRequest[] {
  return lines.map((line) => {
    const { format: f, result } = parseAccessLogLine(line);
    if (!result.ok) throw new Error(`rejected (${result.reason}: ${result.message}): ${line}`);
    expect(f).toBe(format);
    return result.value;
  });
}

function parsedFlows(lines: readonly string[]): Flow[] {
  return lines.map((line) => {
    const { format, result } = parseFlowLine(line);
    if (!result.ok) throw new Error(`rejected (${result.reason}: ${result.message}): ${line}`);
    expect(format).toBe('hubble');
    return result.value;
  });
}

function parsedSpans(spans: readonly string[]): Span[] {
  const parsed = parseZipkin(`[${spans.join(',')}]`);
  if (!parsed.ok) throw new Error(`${parsed.reason}: ${parsed.message}`);
  expect(parsed.value.rejects).toEqual([]);
  return parsed.value.records;
}

// --- the truth, recomputed from parsed records (CONTRACT.md §4–§6, independently of truth.ts) -----------

function subsetsOf(records: readonly MeshRequest[], reporter: 'source' | 'destination'): SubsetTruth[] {
  const rows = new Map<string, SubsetTruth>();
  for (const r of records) {
    if (r.reporter !== reporter) continue;
    // The query API spells an absent namespace `unknown`, as /metrics does (CONTRACT.md §5); the subset stays ''.
    const namespace = orUnknown(r.destinationNamespace);
    const key = JSON.stringify([namespace, r.destinationService, r.destinationHost, r.destinationSubset]);
    let row = rows.get(key);
    if (!row) {
      row = { namespace, service: r.destinationService, host: r.destinationHost, subset: r.destinationSubset, requests: 0, errors: 0, denied: 0, durations_ms: [] };
      rows.set(key, row);
    }
    row.requests++;
    if (r.outcome === 'error') row.errors++;
    if (r.outcome === 'denied') row.denied++;
    row.durations_ms.push(r.durationMs);
  }
  return normalizeSubsets([...rows.values()]);
}

/** Durations compared as multisets: TEXT and JSON records arrive in two arrays, so their order differs. */
function normalizeSubsets(rows: readonly SubsetTruth[]): SubsetTruth[] {
  return rows
    .map((r) => ({ ...r, durations_ms: [...r.durations_ms].sort((a, b) => a - b) }))
    .sort((a, b) => JSON.stringify([a.namespace, a.service, a.subset]).localeCompare(JSON.stringify([b.namespace, b.service, b.subset])));
}

function requestsTotalOf(records: readonly MeshRequest[]): RequestsTotalSample[] {
  const series = new Map<string, RequestsTotalSample>();
  for (const r of records) {
    const labels = {
      reporter: r.reporter as 'source' | 'destination',
      // CONTRACT.md §5: empty label values are `unknown`, except the subset.
      source_workload: orUnknown(r.sourceWorkload),
      source_workload_namespace: orUnknown(r.sourceNamespace),
      destination_service: orUnknown(r.destinationHost),
      destination_service_name: orUnknown(r.destinationService),
      destination_service_namespace: orUnknown(r.destinationNamespace),
      destination_subset: r.destinationSubset,
      response_code: String(r.responseCode),
      response_flags: flagsLabel(r.responseFlags),
      outcome: r.outcome,
    };
    const key = JSON.stringify(labels);
    const s = series.get(key);
    if (s) s.value++;
    else series.set(key, { labels, value: 1 });
  }
  return sortBy([...series.values()], (s) => JSON.stringify(s.labels));
}

/**
 * `/api/v1/flows?reporter=all`: a request both sidecars logged (same x-request-id) counts once, with the
 * caller from the client side and the destination and verdict from the server side (CONTRACT.md §6).
 */
function flowsOf(records: readonly MeshRequest[], flows: readonly Flow[]): FlowTruth[] {
  const requests = new Map<string, { source?: MeshRequest; destination?: MeshRequest }>();
  records.forEach((r, i) => {
    const id = r.requestId || `no-id-${i}`; // TCP lines carry no request id: each is its own connection
    const pair = requests.get(id) ?? {};
    expect(pair[r.reporter as 'source' | 'destination']).toBeUndefined();
    pair[r.reporter as 'source' | 'destination'] = r;
    requests.set(id, pair);
  });
  const rows = new Map<string, FlowTruth>();
  const add = (
    layer: 'L7' | 'L4',
    source: { namespace: string; workload: string },
    d: { namespace: string; service: string; host: string; subset: string; port: number },
    denied: boolean,
    reason: string,
    policy: string,
    rule: number,
  ): void => {
    const key = JSON.stringify([layer, source, d]);
    let row = rows.get(key);
    if (!row) {
      row = { source, destination: d, layer, allowed: 0, denied: 0, deny_reasons: {}, policies: [] };
      rows.set(key, row);
    }
    if (!denied) {
      row.allowed++;
      return;
    }
    row.denied++;
    row.deny_reasons[reason] = (row.deny_reasons[reason] ?? 0) + 1;
    if (policy) {
      const p = row.policies.find((x) => x.policy === policy && x.rule === rule);
      if (p) p.count++;
      else row.policies.push({ policy, rule, count: 1 });
    }
  };
  for (const { source, destination } of requests.values()) {
    const verdict = (destination ?? source)!;
    add(
      verdict.protocol === 'tcp' ? 'L4' : 'L7', // a TCP connection in an access log is L4 traffic
      source ? { namespace: orUnknown(source.sourceNamespace), workload: orUnknown(source.sourceWorkload) } : { namespace: 'unknown', workload: 'unknown' },
      {
        namespace: orUnknown(verdict.destinationNamespace),
        service: orUnknown(verdict.destinationService),
        host: orUnknown(verdict.destinationHost),
        subset: verdict.destinationSubset,
        port: verdict.destinationPort,
      },
      verdict.outcome === 'denied',
      verdict.denyReason,
      verdict.policy,
      verdict.rule,
    );
  }
  for (const f of flows) {
    add(
      'L4',
      { namespace: orUnknown(f.sourceNamespace), workload: orUnknown(f.sourceWorkload) },
      { namespace: orUnknown(f.destinationNamespace), service: orUnknown(f.destinationService), host: orUnknown(f.destinationHost), subset: '', port: f.destinationPort },
      f.verdict === 'denied',
      f.denyReason,
      f.policy,
      f.rule,
    );
  }
  return normalizeFlows([...rows.values()]);
}

function normalizeFlows(rows: readonly FlowTruth[]): FlowTruth[] {
  return sortBy(
    rows.map((r) => ({ ...r, policies: sortBy(r.policies, (p) => `${p.policy}/${p.rule}`) })),
    (r) => JSON.stringify([r.layer, r.source, r.destination]),
  );
}

function sortBy<T>(items: readonly T[], key: (t: T) => string): T[] {
  return [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function expectTruthMatches(sim: Simulation, records: readonly MeshRequest[], flows: readonly Flow[]): void {
  const t = sim.truth;
  expect(normalizeSubsets(t.subsets.source)).toEqual(subsetsOf(records, 'source'));
  expect(normalizeSubsets(t.subsets.destination)).toEqual(subsetsOf(records, 'destination'));
  expect(sortBy(t.requests_total, (s) => JSON.stringify(s.labels))).toEqual(requestsTotalOf(records));
  expect(normalizeFlows(t.flows)).toEqual(flowsOf(records, flows));
}

function row<T extends { source: { workload: string }; destination: { service: string }; layer: string }>(
  rows: readonly T[],
  layer: string,
  workload: string,
  service: string,
): T | undefined {
  return rows.find((r) => r.layer === layer && r.source.workload === workload && r.destination.service === service);
}

describe('simulate', () => {
  describe('with Fluent Bit envelopes (the demo)', () => {
    const sim = simulate({ seed: 42, startTimeMs: START, requests: 3000 });
    const records = [...parsedRequests(sim.textLines, 'envelope'), ...parsedRequests(sim.jsonLines, 'envelope')];
    const flows = parsedFlows(sim.flowLines);

    it('emits a mix of TEXT and JSON lines, spans and flows, and counts them', () => {
      const e = sim.truth.emitted;
      expect(e.root_requests).toBe(3000);
      expect(e.page_loads + e.sleep_calls).toBe(3000);
      expect(e.text_lines).toBe(sim.textLines.length);
      expect(e.json_lines).toBe(sim.jsonLines.length);
      expect(e.spans).toBe(sim.spans.length);
      expect(e.flow_records).toBe(sim.flowLines.length);
      // Inner encodings: envelopes around TEXT lines and around JSON lines.
      expect(JSON.parse(sim.textLines[0]!).log).toMatch(/^\[2026-03-14T09:00:/);
      expect(JSON.parse(sim.jsonLines[0]!).log).toMatch(/^\{"start_time":"2026-03-14T09:00:/);
      expect(sim.textLines.length / (sim.textLines.length + sim.jsonLines.length)).toBeCloseTo(0.5, 1);
    });

    it('every access-log line parses, and the parsed records give exactly the reported truth', () => {
      expect(records.length).toBe(sim.truth.emitted.text_lines + sim.truth.emitted.json_lines);
      expectTruthMatches(sim, records, flows);
    });

    it('pairs the two sidecars of each hop by x-request-id, with the subset on both sides', () => {
      const byId = new Map<string, MeshRequest[]>();
      for (const r of records) if (r.requestId) byId.set(r.requestId, [...(byId.get(r.requestId) ?? []), r]);
      let pairs = 0;
      for (const [, rs] of byId) {
        if (rs.length !== 2) continue;
        pairs++;
        const src = rs.find((r) => r.reporter === 'source')!;
        const dst = rs.find((r) => r.reporter === 'destination')!;
        expect(src.upstreamCluster).toMatch(/^outbound\|9080\|v\d\|[a-z]+\.default\.svc\.cluster\.local$/);
        expect(dst.upstreamCluster).toBe('inbound|9080||');
        expect(dst.destinationSubset).toBe(src.destinationSubset);
        expect(dst.destinationHost).toBe(src.destinationHost);
        expect(dst.destinationWorkload).toBe(`${dst.destinationService}-${dst.destinationSubset}`);
      }
      // Only connection failures (and the sleep client's egress) leave a client line without a server line.
      expect(pairs).toBeGreaterThan(0.97 * sim.truth.emitted.requests);
    });

    it('names the callers from the envelope metadata', () => {
      const sources = new Set(records.filter((r) => r.reporter === 'source').map((r) => `${r.sourceNamespace}/${r.sourceWorkload}`));
      expect([...sources].sort()).toEqual(['default/productpage-v1', 'default/reviews-v2', 'default/reviews-v3', 'default/sleep', 'istio-system/istio-ingressgateway']);
    });

    it('has the denials the mesh config promises', () => {
      const denied = records.filter((r) => r.outcome === 'denied');
      const rbac = denied.filter((r) => r.denyReason === 'rbac');
      expect(rbac.length).toBeGreaterThan(0);
      for (const r of rbac) {
        expect(r).toMatchObject({ reporter: 'destination', responseCode: 403, destinationService: 'ratings', destinationSubset: 'v1', policy: 'default/deny-sleep', rule: 0 });
      }
      // The sleep client's own sidecar passes the 403 on (`via_upstream`): not a denial on the client side.
      const sleepToRatings = records.filter((r) => r.reporter === 'source' && r.sourceWorkload === 'sleep' && r.destinationService === 'ratings');
      expect(sleepToRatings.length).toBe(rbac.length);
      for (const r of sleepToRatings) expect(r).toMatchObject({ responseCode: 403, responseCodeDetails: 'via_upstream', outcome: 'ok' });
      const blackhole = denied.filter((r) => r.denyReason === 'blackhole');
      expect(new Set(blackhole.map((r) => `${r.protocol} ${r.responseCode} ${r.destinationService}`))).toEqual(new Set(['http 502 BlackHoleCluster', 'tcp 0 BlackHoleCluster']));
      expect(denied.length).toBe(rbac.length + blackhole.length);

      const t = sim.truth.flows;
      expect(row(t, 'L7', 'sleep', 'ratings')).toMatchObject({ allowed: 0, deny_reasons: { rbac: rbac.length }, policies: [{ policy: 'default/deny-sleep', rule: 0, count: rbac.length }] });
      // The HTTP calls to BlackHoleCluster are L7 rows, the TCP connections L4 rows.
      const httpBlackhole = blackhole.filter((r) => r.protocol === 'http').length;
      const tcpBlackhole = blackhole.length - httpBlackhole;
      expect(row(t, 'L7', 'sleep', 'BlackHoleCluster')).toMatchObject({ allowed: 0, denied: httpBlackhole, deny_reasons: { blackhole: httpBlackhole }, policies: [] });
      expect(row(t, 'L4', 'sleep', 'BlackHoleCluster')).toMatchObject({ allowed: 0, denied: tcpBlackhole, deny_reasons: { blackhole: tcpBlackhole }, policies: [] });
      const drops = flows.filter((f) => f.verdict === 'denied');
      expect(drops.length).toBeGreaterThan(0);
      expect(row(t, 'L4', 'sleep', 'mysqldb')).toMatchObject({ allowed: 0, denied: drops.length, deny_reasons: { network_policy: drops.length } });
      expect(row(t, 'L4', 'ratings-v1', 'mysqldb')).toMatchObject({ allowed: flows.length - drops.length, denied: 0 });
    });

    it('has errors of each kind: application 5xx, connection failures, and downstream disconnects that are not errors', () => {
      expect(records.some((r) => r.outcome === 'error' && r.responseCode === 500 && r.responseFlags === '')).toBe(true);
      expect(records.some((r) => r.outcome === 'error' && r.responseCode === 503 && r.responseFlags === 'UF,URX' && r.reporter === 'source')).toBe(true);
      const dc = records.filter((r) => r.responseFlags === 'DC');
      expect(dc.length).toBeGreaterThan(0);
      for (const r of dc) expect(r).toMatchObject({ responseCode: 0, outcome: 'ok', destinationService: 'productpage' });
    });

    it('keeps event times: every record starts at or after the start time', () => {
      const starts = records.map((r) => r.startTimeMs);
      expect(Math.min(...starts)).toBe(START);
      expect(Math.min(...starts)).toBe(sim.truth.fromMs);
      expect(Math.max(...starts, ...flows.map((f) => f.startTimeMs))).toBe(sim.truth.toMs);
      // 3000 root requests at the default 20 per second: about 150 s of event time.
      expect(sim.truth.toMs - sim.truth.fromMs).toBeGreaterThan(130_000);
      expect(sim.truth.toMs - sim.truth.fromMs).toBeLessThan(170_000);
    });

    it('every span parses; CLIENT and SERVER spans of a hop share trace, request id and parentage', () => {
      const spans = parsedSpans(sim.spans);
      expect(spans.length).toBe(sim.spans.length);
      const byId = new Map(spans.map((s) => [s.spanId, s]));
      const sourceRecords = new Map(records.filter((r) => r.reporter === 'source').map((r) => [r.requestId, r]));
      let servers = 0;
      for (const s of spans) {
        if (s.kind === 'server') {
          servers++;
          const client = byId.get(s.parentSpanId)!;
          expect(client).toMatchObject({ kind: 'client', traceId: s.traceId, requestId: s.requestId });
          expect(s.upstreamCluster).toBe('inbound|9080||');
        } else {
          expect(s.kind).toBe('client');
          const r = sourceRecords.get(s.requestId)!;
          expect(s).toMatchObject({ destinationHost: r.destinationHost, destinationSubset: r.destinationSubset, responseCode: r.responseCode });
          expect(s.error).toBe(r.responseCode === 0 || r.responseCode >= 500);
          // Children of a server span share its trace.
          if (s.parentSpanId) expect(byId.get(s.parentSpanId)).toMatchObject({ kind: 'server', traceId: s.traceId });
        }
      }
      expect(servers).toBeGreaterThan(0);
      expect(new Set(spans.filter((s) => !s.parentSpanId).map((s) => s.traceId)).size).toBe(spans.filter((s) => !s.parentSpanId).length);
    });
  });

  it('raw lines (no shipper) parse as Istio TEXT and JSON, and the truth then knows no caller', () => {
    const sim = simulate({ seed: 9, startTimeMs: START, requests: 1500, shipper: 'none', jsonShare: 0.3 });
    const records = [...parsedRequests(sim.textLines, 'istio_text'), ...parsedRequests(sim.jsonLines, 'istio_json')];
    expectTruthMatches(sim, records, parsedFlows(sim.flowLines));
    expect(new Set(sim.truth.requests_total.map((s) => s.labels.source_workload))).toEqual(new Set(['unknown']));
    expect(sim.textLines.length / records.length).toBeCloseTo(0.7, 1);
  });

  it('is deterministic: the same seed gives the same bytes, another seed other bytes', () => {
    const a = simulate({ seed: 7, startTimeMs: START, durationMs: 30_000 });
    const b = simulate({ seed: 7, startTimeMs: START, durationMs: 30_000 });
    const c = simulate({ seed: 8, startTimeMs: START, durationMs: 30_000 });
    expect(b).toEqual(a);
    expect(JSON.stringify(b.truth)).toBe(JSON.stringify(a.truth));
    expect(c.textLines).not.toEqual(a.textLines);
    expect(c.spans).not.toEqual(a.spans);
  });

  it('gives the same traffic whatever the encoding, shipper and sampling', () => {
    const base = simulate({ seed: 11, startTimeMs: START, requests: 500 });
    const other = simulate({ seed: 11, startTimeMs: START, requests: 500, jsonShare: 1, shipper: 'none', traceSampling: 0.1 });
    const trafficOf = (t: GroundTruth) => ({ subsets: t.subsets, routing: t.routing, fromMs: t.fromMs, toMs: t.toMs, requests: t.emitted.requests });
    expect(trafficOf(other.truth)).toEqual(trafficOf(base.truth));
    expect(other.textLines).toEqual([]);
    expect(other.spans.length).toBeLessThan(base.spans.length / 5);
  });

  it('generating in steps gives the same records as generating at once', () => {
    const whole = simulate({ seed: 5, startTimeMs: START, durationMs: 20_000, rps: 30 });
    const gen = createTrafficGenerator({ seed: 5, startTimeMs: START, rps: 30 });
    const parts = [gen.until(START + 7_000), gen.until(START + 7_000), gen.until(START + 13_500), gen.until(START + 20_000)];
    const joined = {
      textLines: parts.flatMap((p) => p.textLines),
      jsonLines: parts.flatMap((p) => p.jsonLines),
      spans: parts.flatMap((p) => p.spans),
      flowLines: parts.flatMap((p) => p.flowLines),
    };
    expect(parts[1]).toEqual({ textLines: [], jsonLines: [], spans: [], flowLines: [] });
    expect({ ...joined, truth: gen.truth() }).toEqual(whole);
  });

  it('spreads root requests over event time at the requested rate', () => {
    const sim = simulate({ seed: 3, startTimeMs: START, durationMs: 60_000, rps: 50 });
    // Poisson arrivals: 3000 expected, standard deviation about 55.
    expect(sim.truth.emitted.root_requests).toBeGreaterThan(2800);
    expect(sim.truth.emitted.root_requests).toBeLessThan(3200);
    expect(sim.truth.fromMs).toBe(START);
  });

  it('rejects bad options', () => {
    expect(() => simulate({ seed: 1, startTimeMs: START })).toThrow(/exactly one/);
    expect(() => simulate({ seed: -1, startTimeMs: START, requests: 1 })).toThrow(RangeError);
    expect(() => simulate({ seed: 1.5, startTimeMs: START, requests: 1 })).toThrow(RangeError);
    expect(() => simulate({ seed: 1, startTimeMs: START, requests: 1, rps: 0 })).toThrow(RangeError);
    expect(() => simulate({ seed: 1, startTimeMs: START, requests: 1, jsonShare: 2 })).toThrow(RangeError);
  });
});

describe('reviews routing over 20,000 page loads', () => {
  const sim = simulate({ seed: 2026, startTimeMs: START, requests: 20_000, shipper: 'none', traceSampling: 0 });
  const reviews = sim.truth.subsets.source.filter((r) => r.service === 'reviews');
  const bySubset = Object.fromEntries(reviews.map((r) => [r.subset, r]));
  const total = reviews.reduce((n, r) => n + r.requests, 0);

  it('converges to 70/25/5 within one percentage point', () => {
    expect(sim.truth.routing.expected_shares).toEqual({ v1: 0.7, v2: 0.25, v3: 0.05 });
    for (const [subset, expected] of Object.entries(sim.truth.routing.expected_shares)) {
      expect(Math.abs(bySubset[subset]!.requests / total - expected)).toBeLessThan(0.01);
    }
  });

  it('reports the routing exactly: header matches all go to v2, and the client-side records add up to them', () => {
    const r = sim.truth.routing;
    expect(r.header_matched.v1).toBe(0);
    expect(r.header_matched.v3).toBe(0);
    for (const subset of ['v1', 'v2', 'v3']) {
      expect(r.total[subset]).toBe(r.header_matched[subset]! + r.weighted[subset]!);
      expect(r.total[subset]).toBe(bySubset[subset]!.requests);
    }
    // 1/6 of page loads are iPhones: the header match carries about two thirds of v2's 25 %.
    expect(r.header_matched.v2! / total).toBeGreaterThan(0.155);
    expect(r.header_matched.v2! / total).toBeLessThan(0.178);
  });

  it('makes v3 clearly worse than the baseline: error ratio and latency', () => {
    const ratio = (s: string) => bySubset[s]!.errors / bySubset[s]!.requests;
    expect(ratio('v3')).toBeGreaterThan(0.07);
    expect(ratio('v3')).toBeLessThan(0.12);
    expect(ratio('v1')).toBeLessThan(0.01);
    const p50 = (s: string) => [...bySubset[s]!.durations_ms].sort((a, b) => a - b)[Math.floor(bySubset[s]!.requests / 2)]!;
    expect(p50('v3')).toBeGreaterThan(2 * p50('v1'));
  });
});
