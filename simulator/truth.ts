/**
 * Ground truth: what meshlens must answer for the records the simulator emitted, computed from what the
 * simulator meant each record to be (never by parsing its own output). Field names follow CONTRACT.md §5/§6,
 * so an answer of the query API or a `/metrics` sample can be compared with a row here directly.
 *
 * Conventions, all from CONTRACT.md §4:
 * - a *record* is one access-log line; a request that both sidecars logged is two records, one per reporter;
 * - outcome: `denied` (an authorization decision refused it: RBAC 403, BlackHoleCluster, a policy drop), else
 *   `error` (5xx, or code 0 with an upstream-failure flag, never `DC`), else `ok`;
 * - a missing name is `"unknown"` everywhere, in the query API as in the Prometheus labels (CONTRACT.md §5): the
 *   namespace of a destination outside the cluster (BlackHoleCluster), a source no metadata names; the subset is
 *   not a name and stays `""` when none is known.
 */
import { flagsLabel, orUnknown } from '../lib/model';
import type { DenyReason, Outcome } from '../lib/model';

/** A destination as the query API names it (CONTRACT.md §6 `/api/v1/subsets` and `/api/v1/flows`). */
export interface DestinationKey {
  namespace: string;
  service: string;
  host: string;
  subset: string;
}

/**
 * One row of `GET /api/v1/subsets` for one reporter, over every record the simulator emitted.
 * `rps` and the latency quantiles depend on the query window and on the quantile method, so the truth gives
 * the raw material instead: the event-time range (`GroundTruth.fromMs/toMs`) and every duration.
 */
export interface SubsetTruth extends DestinationKey {
  /** Records of this reporter for this destination, whatever their outcome (denied ones too). */
  requests: number;
  /** Records whose outcome is `error`. */
  errors: number;
  /** Records whose outcome is `denied`. */
  denied: number;
  /**
   * `%DURATION%` of every record (ms, as logged), in emission order. Its length is `requests`. The query API's
   * quantiles are nearest-rank, as operators count: the q-quantile is the duration at rank ceil(q·n) of these sorted
   * (1-based), answered within 1 % (docs/api.md, "Latency quantiles"); the p99 of {84, 10273} is 10273.
   */
  durations_ms: number[];
}

/** One series of `meshlens_requests_total` (CONTRACT.md §5): its labels and its value (a count of records). */
export interface RequestsTotalSample {
  labels: {
    reporter: 'source' | 'destination';
    /**
     * The workload that sent the request. Only a client-side record shipped with Kubernetes metadata names it
     * (`shipper: 'fluent-bit'`); server-side records and raw lines leave it `unknown` (as do its namespace).
     */
    source_workload: string;
    source_workload_namespace: string;
    /** The destination host (`reviews.default.svc.cluster.local`, or `BlackHoleCluster`). */
    destination_service: string;
    destination_service_name: string;
    destination_service_namespace: string;
    destination_subset: string;
    /** As a Prometheus label: `"200"`, `"0"` for no response. */
    response_code: string;
    /** As Istio labels it: `-` for none. */
    response_flags: string;
    outcome: Outcome;
  };
  value: number;
}

export interface PolicyCount {
  /** `<namespace>/<name>`. */
  policy: string;
  /** Rule index within the policy; -1 when the record does not name one. */
  rule: number;
  count: number;
}

/**
 * One row of `GET /api/v1/flows?reporter=all` (CONTRACT.md §6), over everything emitted.
 *
 * - L7 rows come from HTTP access logs (a TCP connection in an access log is an L4 row): each request counts once however many sidecars logged it; its source is the
 *   client-side record's (the only one that names the caller), its destination and verdict the server side's
 *   when there is one (policy is enforced there), else the client side's. A request is `denied` when that
 *   record's outcome is `denied`, and `allowed` otherwise (errors were allowed through).
 * - L4 rows come from flow records: each record counts once (a dropped SYN is one denied attempt).
 */
export interface FlowTruth {
  source: { namespace: string; workload: string };
  destination: DestinationKey & { port: number };
  layer: 'L7' | 'L4';
  allowed: number;
  denied: number;
  /** Denied count per deny reason (`rbac`, `blackhole`, `network_policy`). */
  deny_reasons: Record<string, number>;
  /** The policies named by the *denied* requests/flows, with their counts; allowed traffic names none here. */
  policies: PolicyCount[];
}

/** How `reviews` traffic was routed, against what the VirtualService promises. */
export interface ReviewsRoutingTruth {
  /** `user-agent` regex of the header-match route (→ v2). */
  user_agent_regex: string;
  /** Share of page loads with an iPhone user agent (expected, not realized). */
  header_match_share: number;
  /** Configured weights (percent) of the weighted route. */
  weights: Record<string, number>;
  /** Overall shares header match + weights produce, exactly, in expectation. */
  expected_shares: Record<string, number>;
  /** Requests that took the header-match route, per subset (all v2). */
  header_matched: Record<string, number>;
  /** Requests that took the weighted route, per subset. */
  weighted: Record<string, number>;
  /** All routed requests per subset: header_matched + weighted. Includes ones that then failed to connect. */
  total: Record<string, number>;
}

export interface GroundTruth {
  seed: number;
  /** Earliest and latest record start time (event time, Unix ms) among the access-log and flow records. */
  fromMs: number;
  toMs: number;
  /** What was emitted. */
  emitted: {
    /** Requests that entered the mesh: page loads through the gateway plus the sleep client's calls. */
    root_requests: number;
    page_loads: number;
    sleep_calls: number;
    /** Hops: one client→server call each (a page load is 3–4 of them). */
    requests: number;
    text_lines: number;
    json_lines: number;
    spans: number;
    flow_records: number;
  };
  routing: ReviewsRoutingTruth;
  /** `GET /api/v1/subsets?reporter=source` and `?reporter=destination`, sorted by namespace, service, subset. */
  subsets: { source: SubsetTruth[]; destination: SubsetTruth[] };
  /** `meshlens_requests_total`, every series, sorted by its labels. */
  requests_total: RequestsTotalSample[];
  /** `GET /api/v1/flows` (reporter `all`), sorted by layer, source, destination. */
  flows: FlowTruth[];
}

/** What the generator knows about one access-log record. */
export interface RecordFacts {
  reporter: 'source' | 'destination';
  sourceWorkload: string;
  sourceNamespace: string;
  destination: DestinationKey;
  responseCode: number;
  /** Envoy short codes as logged, comma-joined; '' for none. */
  responseFlags: string;
  outcome: Outcome;
  durationMs: number;
}

/** What the generator knows about one request (one hop) or one L4 flow, for the flows ledger. */
export interface FlowFacts {
  layer: 'L7' | 'L4';
  source: { namespace: string; workload: string };
  destination: DestinationKey;
  /** Destination port: the service port, 0 where none is known (BlackHoleCluster). */
  port: number;
  denied: boolean;
  denyReason: DenyReason;
  /** '' when no policy is named. */
  policy: string;
  rule: number;
}

/**
 * Accumulates truth as records are generated; `snapshot()` returns a sorted, self-contained copy.
 * Runs once per emitted record, so destinations are numbered once (by object identity, then by value) and the
 * per-record keys are short.
 */
export class TruthAccumulator {
  // Weak: a caller passing a fresh object per record must not make this grow forever.
  private readonly destinationIds = new WeakMap<DestinationKey, number>();
  private readonly destinationIdsByValue = new Map<string, number>();
  private readonly subsets = { source: new Map<number, SubsetTruth>(), destination: new Map<number, SubsetTruth>() };
  private readonly requestsTotal = new Map<string, RequestsTotalSample>();
  private readonly flows = new Map<string, FlowTruth>();
  private fromMs = Number.POSITIVE_INFINITY;
  private toMs = Number.NEGATIVE_INFINITY;
  readonly emitted: GroundTruth['emitted'] = {
    root_requests: 0,
    page_loads: 0,
    sleep_calls: 0,
    requests: 0,
    text_lines: 0,
    json_lines: 0,
    spans: 0,
    flow_records: 0,
  };
  readonly routing: ReviewsRoutingTruth;

  constructor(
    private readonly seed: number,
    routing: Omit<ReviewsRoutingTruth, 'header_matched' | 'weighted' | 'total'>,
  ) {
    const zero = (): Record<string, number> => Object.fromEntries(Object.keys(routing.weights).map((s) => [s, 0]));
    this.routing = { ...routing, header_matched: zero(), weighted: zero(), total: zero() };
  }

  routed(subset: string, byHeader: boolean): void {
    const bucket = byHeader ? this.routing.header_matched : this.routing.weighted;
    bucket[subset] = (bucket[subset] ?? 0) + 1;
    this.routing.total[subset] = (this.routing.total[subset] ?? 0) + 1;
  }

  eventTime(ms: number): void {
    if (ms < this.fromMs) this.fromMs = ms;
    if (ms > this.toMs) this.toMs = ms;
  }

  private destinationId(d: DestinationKey): number {
    let id = this.destinationIds.get(d);
    if (id === undefined) {
      const byValue = `${d.namespace}\u0000${d.service}\u0000${d.host}\u0000${d.subset}`;
      id = this.destinationIdsByValue.get(byValue);
      if (id === undefined) {
        id = this.destinationIdsByValue.size;
        this.destinationIdsByValue.set(byValue, id);
      }
      this.destinationIds.set(d, id);
    }
    return id;
  }

  record(r: RecordFacts): void {
    const d = r.destination;
    const destId = this.destinationId(d);
    const rows = this.subsets[r.reporter];
    let row = rows.get(destId);
    if (!row) {
      row = { ...spelled(d), requests: 0, errors: 0, denied: 0, durations_ms: [] };
      rows.set(destId, row);
    }
    row.requests++;
    if (r.outcome === 'error') row.errors++;
    else if (r.outcome === 'denied') row.denied++;
    row.durations_ms.push(r.durationMs);

    const seriesKey = `${destId}\u0000${r.reporter}\u0000${r.sourceWorkload}\u0000${r.sourceNamespace}\u0000${r.responseCode}\u0000${r.responseFlags}\u0000${r.outcome}`;
    const sample = this.requestsTotal.get(seriesKey);
    if (sample) {
      sample.value++;
      return;
    }
    this.requestsTotal.set(seriesKey, {
      labels: {
        reporter: r.reporter,
        // Prometheus labels say `unknown` where the record has no value (CONTRACT.md §5); the subset stays ''.
        source_workload: orUnknown(r.sourceWorkload),
        source_workload_namespace: orUnknown(r.sourceNamespace),
        destination_service: orUnknown(d.host),
        destination_service_name: orUnknown(d.service),
        destination_service_namespace: orUnknown(d.namespace),
        destination_subset: d.subset,
        response_code: String(r.responseCode),
        response_flags: flagsLabel(r.responseFlags),
        outcome: r.outcome,
      },
      value: 1,
    });
  }

  flow(f: FlowFacts): void {
    const d = f.destination;
    const key = `${this.destinationId(d)}\u0000${f.port}\u0000${f.layer}\u0000${f.source.namespace}\u0000${f.source.workload}`;
    let row = this.flows.get(key);
    if (!row) {
      row = {
        source: { namespace: orUnknown(f.source.namespace), workload: orUnknown(f.source.workload) },
        destination: { ...spelled(d), port: f.port },
        layer: f.layer,
        allowed: 0,
        denied: 0,
        deny_reasons: {},
        policies: [],
      };
      this.flows.set(key, row);
    }
    if (!f.denied) {
      row.allowed++;
      return;
    }
    row.denied++;
    row.deny_reasons[f.denyReason] = (row.deny_reasons[f.denyReason] ?? 0) + 1;
    if (f.policy) {
      const p = row.policies.find((x) => x.policy === f.policy && x.rule === f.rule);
      if (p) p.count++;
      else row.policies.push({ policy: f.policy, rule: f.rule, count: 1 });
    }
  }

  snapshot(): GroundTruth {
    const bySubset = (a: SubsetTruth, b: SubsetTruth): number =>
      cmp(a.namespace, b.namespace) || cmp(a.service, b.service) || cmp(a.host, b.host) || cmp(a.subset, b.subset);
    const copySubsets = (m: Map<number, SubsetTruth>): SubsetTruth[] =>
      [...m.values()].map((r) => ({ ...r, durations_ms: r.durations_ms.slice() })).sort(bySubset);
    const seriesKey = (s: RequestsTotalSample): string => Object.values(s.labels).join('\u0000');
    const flowKey = (f: FlowTruth): string =>
      [f.layer, f.source.namespace, f.source.workload, f.destination.namespace, f.destination.service, f.destination.subset, String(f.destination.port).padStart(5, '0')].join('\u0000');
    const empty = this.fromMs > this.toMs;
    return {
      seed: this.seed,
      fromMs: empty ? 0 : this.fromMs,
      toMs: empty ? 0 : this.toMs,
      emitted: { ...this.emitted },
      routing: {
        ...this.routing,
        weights: { ...this.routing.weights },
        expected_shares: { ...this.routing.expected_shares },
        header_matched: { ...this.routing.header_matched },
        weighted: { ...this.routing.weighted },
        total: { ...this.routing.total },
      },
      subsets: { source: copySubsets(this.subsets.source), destination: copySubsets(this.subsets.destination) },
      requests_total: [...this.requestsTotal.values()]
        .map((s) => ({ labels: { ...s.labels }, value: s.value }))
        .sort((a, b) => cmp(seriesKey(a), seriesKey(b))),
      flows: [...this.flows.values()]
        .map((f) => ({
          source: { ...f.source },
          destination: { ...f.destination },
          layer: f.layer,
          allowed: f.allowed,
          denied: f.denied,
          deny_reasons: { ...f.deny_reasons },
          policies: f.policies.map((p) => ({ ...p })).sort((a, b) => cmp(a.policy, b.policy) || a.rule - b.rule),
        }))
        .sort((a, b) => cmp(flowKey(a), flowKey(b))),
    };
  }
}

/** A destination as the query API spells it: `unknown` for a missing name, the subset as it is. */
function spelled(d: DestinationKey): DestinationKey {
  return { namespace: orUnknown(d.namespace), service: orUnknown(d.service), host: orUnknown(d.host), subset: d.subset };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
