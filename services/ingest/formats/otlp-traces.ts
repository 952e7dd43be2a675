/**
 * OTLP traces → Span, as Istio's `opentelemetry` tracing provider sends them: OTLP/gRPC, or OTLP/HTTP
 * `/v1/traces` with Envoy ≥ 1.29 (https://opentelemetry.io/blog/2024/new-otel-features-envoy-istio/), both
 * protobuf; OTLP/JSON arrives from collectors re-exporting. The span attributes are the Envoy/Istio tags of
 * telemetry-formats.md §6 as `stringValue`s, `kind` is an integer and `service.name` is a resource attribute.
 *
 * One bad span is rejected on its own (reason, 1-based index across the request, OTLP/JSON text for the
 * dead-letter topic). Its neighbours still count, and the receiver reports the rejects through
 * `partialSuccess.rejectedSpans`.
 */
import { emptySpan, reject, type Result, type Span } from '../../../lib/model';
import {
  decodeExportTraceRequest,
  decodeExportTraceRequestJson,
  keyValuesToRecord,
  spanToOtlpJson,
  type ExportTraceRequest,
  type OtlpSpan,
} from '../otlp/codec';
import type { Batch, RecordReject } from './batch';
import { applyMeshTags, isAllZeros, isValidId, MAX_PLAUSIBLE_MS, MIN_PLAUSIBLE_MS, spanKindFromOtlp } from './mesh-span';

export type OtlpEncoding = 'protobuf' | 'json';

/** OTLP `Status.StatusCode.STATUS_CODE_ERROR`. */
const STATUS_ERROR = 2;

/** Nanoseconds → milliseconds, keeping microseconds (what Jaeger stores). */
function nanosToMs(ns: bigint): number {
  return Number(ns / 1000n) / 1000;
}

function toSpan(s: OtlpSpan, serviceName: string): Result<Span> {
  if (s.invalid) return reject(s.invalid.reason, s.invalid.message);
  if (s.traceId.length === 0) return reject('missing_field', 'span has no traceId');
  if (!isValidId(s.traceId, 32)) return reject('invalid_field', `traceId ${JSON.stringify(s.traceId.slice(0, 40))} is not 16 non-zero bytes of hex`);
  if (s.spanId.length === 0) return reject('missing_field', 'span has no spanId');
  if (!isValidId(s.spanId, 16)) return reject('invalid_field', `spanId ${JSON.stringify(s.spanId.slice(0, 40))} is not 8 non-zero bytes of hex`);
  // A root span has no parent; some senders write eight zero bytes instead of leaving the field empty.
  const parent = isAllZeros(s.parentSpanId) ? '' : s.parentSpanId;
  if (parent.length > 0 && !isValidId(parent, 16)) {
    return reject('invalid_field', `parentSpanId ${JSON.stringify(parent.slice(0, 40))} is not 8 bytes of hex`);
  }
  if (s.startTimeUnixNano === 0n) return reject('missing_field', 'span has no startTimeUnixNano');
  const startMs = nanosToMs(s.startTimeUnixNano);
  if (startMs < MIN_PLAUSIBLE_MS || startMs > MAX_PLAUSIBLE_MS) {
    return reject('invalid_timestamp', `startTimeUnixNano ${s.startTimeUnixNano} is outside 2000–2100`);
  }
  if (s.endTimeUnixNano < s.startTimeUnixNano) {
    return reject('invalid_timestamp', `endTimeUnixNano ${s.endTimeUnixNano} is before startTimeUnixNano ${s.startTimeUnixNano}`);
  }
  // The end must be as plausible as the start: a span of centuries is a unit or overflow bug, not a request.
  if (nanosToMs(s.endTimeUnixNano) > MAX_PLAUSIBLE_MS) {
    return reject('invalid_timestamp', `endTimeUnixNano ${s.endTimeUnixNano} is after 2100`);
  }

  const span = emptySpan();
  span.traceId = s.traceId;
  span.spanId = s.spanId;
  span.parentSpanId = parent;
  span.name = s.name;
  span.kind = spanKindFromOtlp(s.kind);
  span.startTimeMs = startMs;
  span.durationMs = nanosToMs(s.endTimeUnixNano - s.startTimeUnixNano);
  span.serviceName = serviceName;
  return { ok: true, value: applyMeshTags(span, keyValuesToRecord(s.attributes), s.status.code === STATUS_ERROR) };
}

function normalize(request: ExportTraceRequest): Batch<Span> {
  const batch: Batch<Span> = { records: [], rejects: [] };
  let index = 0;
  for (const rs of request.resourceSpans) {
    let serviceName = '';
    for (const kv of rs.resource.attributes) {
      if (kv.key === 'service.name' && kv.value.kind === 'string') serviceName = kv.value.value;
    }
    for (const ss of rs.scopeSpans) {
      for (const s of ss.spans) {
        index++;
        const r = toSpan(s, serviceName);
        if (r.ok) batch.records.push(r.value);
        else batch.rejects.push(rejectOf(index, r.reason, r.message, s));
      }
    }
  }
  return batch;
}

function rejectOf(index: number, reason: RecordReject['reason'], message: string, s: OtlpSpan): RecordReject {
  return { index, reason, message, raw: spanToOtlpJson(s) };
}

/**
 * Decode an `ExportTraceServiceRequest` body and normalize every span. A body that does not decode is a
 * Rejection (`malformed_protobuf` / `malformed_json`). Otherwise the batch holds one record or one
 * reject per span.
 */
export function parseOtlpTraces(body: Buffer, encoding: OtlpEncoding): Result<Batch<Span>> {
  const decoded = encoding === 'json' ? decodeExportTraceRequestJson(body) : decodeExportTraceRequest(body);
  if (!decoded.ok) return decoded;
  return { ok: true, value: normalize(decoded.value) };
}
