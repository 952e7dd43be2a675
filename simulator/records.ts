/**
 * Serializers for what Envoy, Fluent Bit and Hubble write, in the layouts shared/reference/telemetry-formats.md
 * describes: Istio's default TEXT access log (the 1.9+ layout, §1.1 G3), Istio's JSON encoding (typed values,
 * §2), Fluent Bit records with Kubernetes metadata (CONTRACT.md §3), Zipkin v2 spans (§6) and Hubble flows (§9.1).
 * Field values come from the generator; these functions only lay them out.
 */
import { PROXY_IMAGE, type Pod } from './mesh';

/** The columns of one access-log record. '' = unset (printed `-`, or `null` in JSON); -1 likewise for numbers. */
export interface AccessLogFields {
  startMs: number;
  method: string;
  path: string;
  protocol: string;
  responseCode: number;
  responseFlags: string;
  responseCodeDetails: string;
  connectionTerminationDetails: string;
  upstreamTransportFailureReason: string;
  bytesReceived: number;
  bytesSent: number;
  durationMs: number;
  /** `x-envoy-upstream-service-time`, -1 when the response had none. */
  upstreamServiceTimeMs: number;
  xForwardedFor: string;
  userAgent: string;
  requestId: string;
  authority: string;
  upstreamHost: string;
  upstreamCluster: string;
  upstreamLocalAddress: string;
  downstreamLocalAddress: string;
  downstreamRemoteAddress: string;
  requestedServerName: string;
  routeName: string;
}

let cachedSecond = Number.NaN;
let cachedPrefix = '';

/** `2026-03-14T09:26:53.589Z` (Envoy's `%START_TIME%`). Records come in bursts within one second: its prefix is cached. */
export function isoMillis(ms: number): string {
  const t = Math.floor(ms);
  const second = Math.floor(t / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20); // `2026-03-14T09:26:53.`
  }
  const millis = t - second * 1000;
  return `${cachedPrefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
}

function dash(s: string): string {
  return s.length === 0 ? '-' : s;
}

/** Istio's default TEXT line (≥ 1.9): `[%START_TIME%] "%REQ(:METHOD)% …" … %ROUTE_NAME%`, 22 tokens. */
export function formatText(f: AccessLogFields): string {
  return (
    `[${isoMillis(f.startMs)}] "${dash(f.method)} ${dash(f.path)} ${dash(f.protocol)}" ${f.responseCode} ${dash(f.responseFlags)} ` +
    `${dash(f.responseCodeDetails)} ${dash(f.connectionTerminationDetails)} "${dash(f.upstreamTransportFailureReason)}" ` +
    `${f.bytesReceived} ${f.bytesSent} ${f.durationMs} ${f.upstreamServiceTimeMs < 0 ? '-' : f.upstreamServiceTimeMs} ` +
    `"${dash(f.xForwardedFor)}" "${dash(f.userAgent)}" "${dash(f.requestId)}" "${dash(f.authority)}" "${dash(f.upstreamHost)}" ` +
    `${dash(f.upstreamCluster)} ${dash(f.upstreamLocalAddress)} ${dash(f.downstreamLocalAddress)} ${dash(f.downstreamRemoteAddress)} ` +
    `${dash(f.requestedServerName)} ${dash(f.routeName)}`
  );
}

/** A JSON string value, or `null` when unset. */
function jsonOrNull(s: string): string {
  return s.length === 0 ? 'null' : JSON.stringify(s);
}

/**
 * Istio's JSON encoding (`accessLogEncoding: JSON`) as Envoy's typed `json_format` prints it since Istio 1.9: the
 * 24 keys of `EnvoyJSONLogFormatIstio` in its order, codes, byte counts and duration as numbers, header-derived
 * values (upstream service time) as strings, unset values `null`, no flags `"-"`. Written out directly rather
 * than through an object and `JSON.stringify`: this runs for every other record, and benchmarks reuse it.
 */
export function formatJson(f: AccessLogFields): string {
  return (
    `{"start_time":"${isoMillis(f.startMs)}","route_name":${jsonOrNull(f.routeName)},"method":${jsonOrNull(f.method)},` +
    `"path":${jsonOrNull(f.path)},"protocol":${jsonOrNull(f.protocol)},"response_code":${f.responseCode},` +
    `"response_flags":${JSON.stringify(dash(f.responseFlags))},"response_code_details":${jsonOrNull(f.responseCodeDetails)},` +
    `"connection_termination_details":${jsonOrNull(f.connectionTerminationDetails)},"bytes_received":${f.bytesReceived},` +
    `"bytes_sent":${f.bytesSent},"duration":${f.durationMs},` +
    `"upstream_service_time":${f.upstreamServiceTimeMs < 0 ? 'null' : `"${f.upstreamServiceTimeMs}"`},` +
    `"x_forwarded_for":${jsonOrNull(f.xForwardedFor)},"user_agent":${jsonOrNull(f.userAgent)},"request_id":${jsonOrNull(f.requestId)},` +
    `"authority":${jsonOrNull(f.authority)},"upstream_host":${jsonOrNull(f.upstreamHost)},"upstream_cluster":${jsonOrNull(f.upstreamCluster)},` +
    `"upstream_local_address":${jsonOrNull(f.upstreamLocalAddress)},"downstream_local_address":${jsonOrNull(f.downstreamLocalAddress)},` +
    `"downstream_remote_address":${jsonOrNull(f.downstreamRemoteAddress)},"requested_server_name":${jsonOrNull(f.requestedServerName)},` +
    `"upstream_transport_failure_reason":${jsonOrNull(f.upstreamTransportFailureReason)}}`
  );
}

/** The `kubernetes` object Fluent Bit's Kubernetes filter adds, serialized once per pod. */
const kubernetesJson = new Map<Pod, string>();

function kubernetesOf(p: Pod): string {
  let json = kubernetesJson.get(p);
  if (json === undefined) {
    json = JSON.stringify({
      pod_name: p.name,
      namespace_name: p.namespace,
      labels: p.labels,
      host: p.node,
      container_name: 'istio-proxy',
      container_image: PROXY_IMAGE,
    });
    kubernetesJson.set(p, json);
  }
  return json;
}

/**
 * A Fluent Bit record of one line of the pod's `istio-proxy` stdout (CRI parser keys `time`, `stream`, `_p`,
 * `log`, then the Kubernetes filter's metadata). `collectedMs` is when the line was read, after the request ended;
 * meshlens ignores it for event time (CONTRACT.md §4 "Time").
 */
export function fluentBitRecord(line: string, emitter: Pod, collectedMs: number): string {
  return `{"time":"${isoMillis(collectedMs)}","stream":"stdout","_p":"F","log":${JSON.stringify(line + '\n')},"kubernetes":${kubernetesOf(emitter)}}`;
}

/** One Zipkin v2 span as Envoy's tracer posts it (Istio: 128-bit trace ids, `shared_span_context: false`). */
export interface ZipkinSpanFields {
  traceId: string;
  id: string;
  /** '' for a root span. */
  parentId: string;
  kind: 'CLIENT' | 'SERVER';
  name: string;
  timestampUs: number;
  durationUs: number;
  emitter: Pod;
  tags: Record<string, string>;
}

export function formatZipkinSpan(s: ZipkinSpanFields): string {
  return JSON.stringify({
    traceId: s.traceId,
    ...(s.parentId ? { parentId: s.parentId } : {}),
    id: s.id,
    kind: s.kind,
    name: s.name,
    timestamp: s.timestampUs,
    duration: s.durationUs,
    localEndpoint: { serviceName: s.emitter.traceServiceName, ipv4: s.emitter.ip },
    tags: s.tags,
  });
}

/** One Hubble L3/L4 flow: the first packet (SYN) of a TCP connection, seen at the destination endpoint. */
export interface HubbleFlowFields {
  /** RFC 3339 with nanoseconds, as Hubble prints it. */
  time: string;
  uuid: string;
  verdict: 'FORWARDED' | 'DROPPED';
  source: Pod;
  sourcePort: number;
  destination: Pod;
  destinationPort: number;
  /** The Service the client addressed (Hubble's `destination_service`). */
  destinationService: { name: string; namespace: string };
}

function hubbleEndpoint(p: Pod): Record<string, unknown> {
  const labels = Object.entries(p.labels)
    .filter(([k]) => k !== 'pod-template-hash')
    .map(([k, v]) => `k8s:${k}=${v}`);
  labels.push(`k8s:io.kubernetes.pod.namespace=${p.namespace}`);
  return {
    identity: p.identity,
    cluster_name: 'default',
    namespace: p.namespace,
    labels,
    pod_name: p.name,
    workloads: [{ name: p.workload, kind: 'Deployment' }],
  };
}

/**
 * `hubble observe -o json` output for a connection attempt: a `FORWARDED` trace event at `TO_ENDPOINT`
 * (trace reason `NEW`) or a `DROPPED` drop event with `POLICY_DENIED` (133). A Kubernetes NetworkPolicy
 * denies by not allowing, so the drop names no denying policy (`ingress_denied_by` is for deny rules).
 */
export function formatHubbleFlow(f: HubbleFlowFields): string {
  const dropped = f.verdict === 'DROPPED';
  const flow: Record<string, unknown> = {
    time: f.time,
    uuid: f.uuid,
    verdict: f.verdict,
    ...(dropped ? { drop_reason: 133 } : {}),
    IP: { source: f.source.ip, destination: f.destination.ip, ipVersion: 'IPv4' },
    l4: { TCP: { source_port: f.sourcePort, destination_port: f.destinationPort, flags: { SYN: true } } },
    source: hubbleEndpoint(f.source),
    destination: hubbleEndpoint(f.destination),
    Type: 'L3_L4',
    node_name: `kind/${f.destination.node}`,
    event_type: dropped ? { type: 1, sub_type: 133 } : { type: 4 },
    traffic_direction: 'INGRESS',
    ...(dropped ? { drop_reason_desc: 'POLICY_DENIED' } : { trace_observation_point: 'TO_ENDPOINT', trace_reason: 'NEW', is_reply: false }),
    destination_service: f.destinationService,
    Summary: 'TCP Flags: SYN',
  };
  return JSON.stringify({ flow, node_name: `kind/${f.destination.node}`, time: f.time });
}
