/**
 * The normalized records every ingest format turns into (CONTRACT.md §4). Flat objects of primitives:
 * they are created once per input line on the hot path, cross the bus, and become ClickHouse rows, so a
 * stable shape without nested allocations keeps all three cheap.
 */

/** Which sidecar wrote the record: `source` = client side / gateway (outbound), `destination` = server side. */
export type Reporter = 'source' | 'destination' | 'unknown';

export type Outcome = 'ok' | 'error' | 'denied';

/** Why a request or flow was refused (CONTRACT.md §4). `''` when the outcome is not `denied`. */
export type DenyReason = 'rbac' | 'ext_authz' | 'blackhole' | 'network_policy' | '';

export type Protocol = 'http' | 'grpc' | 'tcp' | 'unknown';

/** Which parser produced a record; a label on `meshlens_ingest_records_total`. */
export type IngestFormat =
  | 'istio_text'
  | 'istio_json'
  | 'envelope'
  | 'otlp_logs'
  | 'otlp_traces'
  | 'zipkin'
  | 'hubble'
  | 'calico';

export interface MeshRequest {
  /** Event time: the request's own start, Unix milliseconds (CONTRACT.md §4 "Time"). */
  startTimeMs: number;
  reporter: Reporter;

  sourceWorkload: string; // 'unknown' when no metadata names it (Istio's convention)
  sourceNamespace: string;
  /** Client address `ip:port` as the server saw it, or the client's own address on outbound lines; '' if unset. */
  sourceAddress: string;

  /** FQDN (`reviews.default.svc.cluster.local`), external host, or `PassthroughCluster`/`BlackHoleCluster`. */
  destinationHost: string;
  destinationService: string;
  destinationNamespace: string;
  /** DestinationRule subset (`v1`), '' when none is known. */
  destinationSubset: string;
  /** Service port from the cluster name or SNI; 0 when unknown. */
  destinationPort: number;
  destinationWorkload: string;
  /** The workload's `version` label when metadata gives it; the mesh config can map it to a subset. */
  destinationVersion: string;
  /** Upstream host `ip:port` that served the request; '' if unset. */
  destinationAddress: string;

  protocol: Protocol;
  /** `HTTP/1.1`, `HTTP/2`... as logged; '' for TCP. */
  httpVersion: string;
  method: string;
  path: string;
  authority: string;
  /** 0 = no response sent (TCP, or the downstream went away). */
  responseCode: number;
  /** Envoy `%RESPONSE_FLAGS%` short codes, comma-joined as logged; '' for none. */
  responseFlags: string;
  responseCodeDetails: string;
  connectionTerminationDetails: string;
  upstreamTransportFailureReason: string;
  /** Raw upstream cluster name with any trailing `;` stripped; '' when unset. */
  upstreamCluster: string;
  requestedServerName: string;
  routeName: string;
  userAgent: string;
  bytesReceived: number;
  bytesSent: number;
  durationMs: number;
  /** `x-envoy-upstream-service-time`; -1 when absent. */
  upstreamServiceTimeMs: number;
  requestId: string;
  /** 32 lowercase hex digits when a trace was active; ''. */
  traceId: string;

  outcome: Outcome;
  denyReason: DenyReason;
  /** `<namespace>/<name>` of the matched RBAC policy, '' when not named. */
  policy: string;
  /** Rule index within `policy`; -1 when not named. */
  rule: number;

  /**
   * Unknown extra keys of JSON logs and OTLP attributes, kept as strings. Empty object when none: records without
   * attributes share one frozen empty object (`NO_ATTRIBUTES`), so add to it only through `setRequestAttribute`.
   */
  attributes: Readonly<Record<string, string>>;
}

export type FlowVerdict = 'allowed' | 'denied';

/** An L3/L4 flow record with a policy verdict (Hubble, Calico). */
export interface Flow {
  startTimeMs: number;
  /** Where the verdict was taken: the sending or the receiving side; 'unknown' when not stated. */
  reporter: Reporter;
  sourceWorkload: string;
  sourceNamespace: string;
  sourceAddress: string;
  destinationHost: string;
  destinationService: string;
  destinationNamespace: string;
  destinationWorkload: string;
  destinationAddress: string;
  destinationPort: number;
  /** `tcp`, `udp`, `icmp`, `sctp`, or '' when not stated. */
  transport: string;
  verdict: FlowVerdict;
  /** Deny reason per CONTRACT.md §4 (`network_policy` for policy drops); '' when allowed. */
  denyReason: DenyReason;
  /** The source's own drop or action description, e.g. Hubble `POLICY_DENIED`, Calico `deny`. */
  detail: string;
  /** `<namespace>/<name>` of the deciding policy when the record names it; ''. */
  policy: string;
  /** Rule index when the record names it; -1. */
  rule: number;
  /** Number of connections this record stands for (Calico aggregates several); >= 1. */
  count: number;
  bytes: number;
  packets: number;
  attributes: Record<string, string>;
}

export type SpanKind = 'unspecified' | 'internal' | 'server' | 'client' | 'producer' | 'consumer';

export interface Span {
  /** 32 lowercase hex digits (64-bit Zipkin ids are left-padded with zeros). */
  traceId: string;
  /** 16 lowercase hex digits. */
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: SpanKind;
  startTimeMs: number;
  /** Microsecond precision kept for Jaeger; milliseconds as a float. */
  durationMs: number;
  /** Emitting service (`localEndpoint.serviceName` / `service.name`), e.g. `reviews.default`. */
  serviceName: string;
  /** `x-request-id`, the join key to access logs; ''. */
  requestId: string;
  /** Upstream cluster tag; gives destination and subset for CLIENT spans. */
  upstreamCluster: string;
  destinationHost: string;
  destinationService: string;
  destinationNamespace: string;
  destinationSubset: string;
  responseCode: number;
  responseFlags: string;
  /** Whether the span reports an error (Zipkin `error` tag, OTLP status ERROR, or 5xx). */
  error: boolean;
  attributes: Record<string, string>;
}

/** A span with every field at its "unset" value; the trace parsers set identity and timing, then read the rest from its tags. */
export function emptySpan(): Span {
  return {
    traceId: '',
    spanId: '',
    parentSpanId: '',
    name: '',
    kind: 'unspecified',
    startTimeMs: 0,
    durationMs: 0,
    serviceName: '',
    requestId: '',
    upstreamCluster: '',
    destinationHost: '',
    destinationService: '',
    destinationNamespace: '',
    destinationSubset: '',
    responseCode: 0,
    responseFlags: '',
    error: false,
    attributes: {},
  };
}
