/**
 * What a span's Envoy/Istio tags say about the request, shared by the Zipkin and OTLP trace parsers.
 * Envoy writes the same tag names in both (telemetry-formats.md §6: `upstream_cluster`, `guid:x-request-id`,
 * `http.status_code`, `response_flags`, `error`, from source/common/tracing/common_values.h). Istio adds
 * `istio.*` (pilot/pkg/networking/core/tracing.go `buildServiceTags`). OTel semantic conventions ≥ 1.21
 * rename the status code to `http.response.status_code`.
 */
import {
  normalizeFlags,
  parseUpstreamCluster,
  serviceFromHost,
  stripAltStatSuffix,
  type Span,
  type SpanKind,
} from '../../../lib/model';

/** Earliest and latest start time we believe: 2000-01-01 and 2100-01-01 (ms). */
export const MIN_PLAUSIBLE_MS = 946_684_800_000;
export const MAX_PLAUSIBLE_MS = 4_102_444_800_000;

const HEX_RE = /^[0-9a-f]+$/;

/** Lowercase hex of exactly `len` digits, not all zeros (W3C/OTLP: an all-zero id is invalid). */
export function isValidId(id: string, len: number): boolean {
  if (id.length !== len || !HEX_RE.test(id)) return false;
  for (let i = 0; i < id.length; i++) if (id.charCodeAt(i) !== 48 /* 0 */) return true;
  return false;
}

export function isAllZeros(id: string): boolean {
  for (let i = 0; i < id.length; i++) if (id.charCodeAt(i) !== 48) return false;
  return true;
}

const OTLP_KINDS: readonly SpanKind[] = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

/** OTLP `Span.SpanKind` integer → model kind; values past CONSUMER (a newer spec) read as unspecified. */
export function spanKindFromOtlp(kind: number): SpanKind {
  return OTLP_KINDS[kind] ?? 'unspecified';
}

function statusCode(tags: Record<string, string>): number {
  const raw = tags['http.status_code'] ?? tags['http.response.status_code'] ?? '';
  if (raw.length === 0 || raw.length > 3) return 0;
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return 0;
    n = n * 10 + c;
  }
  return n;
}

/** `reviews.default` (Istio's `<canonical service>.<namespace>` service name) → ['reviews', 'default']. */
function splitServiceName(name: string): [string, string] {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? [name.slice(0, dot), name.slice(dot + 1)] : [name, ''];
}

/**
 * Fill request id, upstream cluster, destination, status and error from a span's tags, and keep every tag in
 * `attributes` (the tracer re-exports them to Jaeger unchanged). `span.serviceName` must already be set:
 * server-side spans (`inbound|port||`) name no destination host, and the destination is then the span's own
 * service.
 */
export function applyMeshTags(span: Span, tags: Record<string, string>, statusError: boolean): Span {
  span.attributes = tags;
  span.requestId = tags['guid:x-request-id'] ?? '';
  const rawCluster = tags['upstream_cluster'] ?? tags['upstream_cluster.name'] ?? '';
  const cluster = stripAltStatSuffix(rawCluster);
  span.upstreamCluster = cluster === '-' ? '' : cluster;
  span.responseCode = statusCode(tags);
  span.responseFlags = normalizeFlags(tags['response_flags'] ?? '');

  const ref = parseUpstreamCluster(span.upstreamCluster);
  if (ref.direction === 'outbound' || ref.direction === 'special' || ref.direction === 'inbound-vip') {
    const s = serviceFromHost(ref.host);
    span.destinationHost = s.host;
    span.destinationService = s.service;
    span.destinationNamespace = s.namespace;
    span.destinationSubset = ref.subset;
  } else if (ref.direction === 'inbound') {
    if (ref.host.length > 0 && !ref.host.startsWith('InboundPassthroughCluster')) {
      // Pre-1.8 inbound clusters still carry the FQDN (istio/istio#27303).
      const s = serviceFromHost(ref.host);
      span.destinationHost = s.host;
      span.destinationService = s.service;
      span.destinationNamespace = s.namespace;
    } else {
      // ≥ 1.8 `inbound|port||`: the callee is the sidecar's own workload, named by the Istio tags or by the
      // `<service>.<namespace>` service name Istio gives its proxies.
      const [svc, ns] = splitServiceName(span.serviceName);
      span.destinationService = tags['istio.canonical_service'] || svc;
      span.destinationNamespace = tags['istio.namespace'] || ns;
    }
  }

  const errorTag = tags['error'];
  // Zipkin: the presence of an `error` tag marks a failed span; Envoy writes `true`. An explicit `false`
  // (some tracers write it) is not an error.
  span.error = statusError || (errorTag !== undefined && errorTag !== 'false') || span.responseCode >= 500;
  return span;
}
