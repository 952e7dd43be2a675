/**
 * OTLP/HTTP protobuf export (https://opentelemetry.io/docs/specs/otlp/#otlphttp): `POST <base>/v1/traces`,
 * `application/x-protobuf`, an `ExportTraceServiceRequest` built with the same vendored protos the receivers
 * decode (lib/otlp). Jaeger accepts it natively since 1.35 (its collector's OTLP port, 4318).
 */
import type { Span, SpanKind } from '../../lib/model';
import { loadOtlpRoot } from '../../lib/otlp';
import { parseRetryAfter, type Sender } from './queue';

const ROOT = loadOtlpRoot();
const TRACE_REQUEST = ROOT.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const TRACE_RESPONSE = ROOT.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');

/** opentelemetry.proto.trace.v1.Span.SpanKind */
const KIND: Record<SpanKind, number> = { unspecified: 0, internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };
/** opentelemetry.proto.trace.v1.Status.StatusCode */
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;

/** The scope that names meshlens as what relayed the spans (they keep their own service and tags). */
export const EXPORT_SCOPE = 'meshlens.tracer';

/** Span start in ms (µs precision as a float) → Unix nanoseconds as a decimal string (fixed64 beyond 2^53). */
export function unixNanos(ms: number): string {
  return (BigInt(Math.round(ms * 1000)) * 1000n).toString();
}

/** `<base>/v1/traces`; a URL already ending in `/v1/traces` is used as it is (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT style). */
export function otlpTracesUrl(endpoint: string): string {
  const trimmed = endpoint.replace(/\/+$/, '');
  return trimmed.endsWith('/v1/traces') ? trimmed : `${trimmed}/v1/traces`;
}

/** One ResourceSpans per emitting service (`service.name`), as a collector would receive them from the sidecars. */
export function encodeOtlpTraces(spans: readonly Span[]): Buffer {
  const byService = new Map<string, Span[]>();
  for (const s of spans) {
    const list = byService.get(s.serviceName);
    if (list) list.push(s);
    else byService.set(s.serviceName, [s]);
  }
  const resourceSpans = [...byService].map(([service, list]) => ({
    resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
    scopeSpans: [{ scope: { name: EXPORT_SCOPE }, spans: list.map(toOtlpSpan) }],
  }));
  const message = TRACE_REQUEST.fromObject({ resourceSpans });
  return Buffer.from(TRACE_REQUEST.encode(message).finish());
}

function toOtlpSpan(s: Span): Record<string, unknown> {
  const attributes: { key: string; value: { stringValue: string } }[] = [];
  for (const key in s.attributes) attributes.push({ key, value: { stringValue: s.attributes[key] as string } });
  return {
    traceId: Buffer.from(s.traceId, 'hex'),
    spanId: Buffer.from(s.spanId, 'hex'),
    parentSpanId: Buffer.from(s.parentSpanId, 'hex'),
    name: s.name,
    kind: KIND[s.kind],
    startTimeUnixNano: unixNanos(s.startTimeMs),
    endTimeUnixNano: unixNanos(s.startTimeMs + s.durationMs),
    attributes,
    status: { code: s.error ? STATUS_ERROR : STATUS_UNSET },
  };
}

/** OTLP's retriable statuses (https://opentelemetry.io/docs/specs/otlp/#retryable-response-codes). */
const RETRIABLE = new Set([429, 502, 503, 504]);

export interface HttpSenderOptions {
  url: string;
  contentType: string;
  encode(spans: Span[]): Buffer;
  /** Reads a 2xx body; returns the spans the endpoint said it rejected. */
  rejectedIn?(body: Buffer): number;
  timeoutMs: number;
}

/** A Sender POSTing encoded batches; network errors and timeouts are retriable, as the OTLP spec says. */
export function httpSender(opts: HttpSenderOptions): Sender {
  return async (spans, signal) => {
    let res: Response;
    try {
      res = await fetch(opts.url, {
        method: 'POST',
        body: opts.encode(spans),
        headers: { 'content-type': opts.contentType },
        signal: AbortSignal.any([signal, AbortSignal.timeout(opts.timeoutMs)]),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      return { ok: false, retriable: true, message: `${opts.url}: ${cause ?? (err as Error).message}` };
    }
    const body = Buffer.from(await res.arrayBuffer().catch(() => new ArrayBuffer(0)));
    if (res.ok) return { ok: true, rejected: opts.rejectedIn?.(body) ?? 0 };
    return {
      ok: false,
      retriable: RETRIABLE.has(res.status),
      retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
      message: `${opts.url}: HTTP ${res.status}`,
    };
  };
}

/** `partialSuccess.rejectedSpans` of an ExportTraceServiceResponse; 0 when absent or unreadable. */
function otlpRejected(body: Buffer): number {
  if (body.length === 0) return 0;
  try {
    const r = TRACE_RESPONSE.toObject(TRACE_RESPONSE.decode(body), { longs: Number }) as { partialSuccess?: { rejectedSpans?: number } };
    return r.partialSuccess?.rejectedSpans ?? 0;
  } catch {
    return 0;
  }
}

export function otlpHttpSender(endpoint: string, timeoutMs: number): Sender {
  return httpSender({ url: otlpTracesUrl(endpoint), contentType: 'application/x-protobuf', encode: encodeOtlpTraces, rejectedIn: otlpRejected, timeoutMs });
}
