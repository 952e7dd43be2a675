/**
 * Test helpers: OTLP request bodies produced by the real OpenTelemetry JS SDK and its OTLP serializers
 * (@opentelemetry/otlp-transformer), i.e. encoded independently of meshlens's own codec. Test-only: imports
 * devDependencies.
 */
import { context, trace, type HrTime, type SpanKind, type SpanStatusCode } from '@opentelemetry/api';
import type { AnyValueMap } from '@opentelemetry/api-logs';
import {
  JsonLogsSerializer,
  JsonTraceSerializer,
  ProtobufLogsSerializer,
  ProtobufTraceSerializer,
} from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';

export interface SdkLog {
  body?: string | AnyValueMap;
  attributes?: AnyValueMap;
  /** Nanoseconds since the epoch, as a decimal string (exact). */
  timeUnixNano?: string;
  traceId?: string;
  spanId?: string;
}

export interface SdkLogResource {
  attributes: Record<string, string>;
  logs: SdkLog[];
}

function hrTime(nanos: string): HrTime {
  const n = BigInt(nanos);
  return [Number(n / 1_000_000_000n), Number(n % 1_000_000_000n)];
}

/** Emit the records through the SDK (one LoggerProvider per resource) and return what the exporter got. */
export function sdkLogRecords(resources: SdkLogResource[]): ReadableLogRecord[] {
  const out: ReadableLogRecord[] = [];
  for (const res of resources) {
    const exporter = new InMemoryLogRecordExporter();
    const provider = new LoggerProvider({
      resource: resourceFromAttributes(res.attributes),
      processors: [new SimpleLogRecordProcessor(exporter)],
    });
    const logger = provider.getLogger('envoy');
    for (const log of res.logs) {
      const ctx =
        log.traceId && log.spanId
          ? trace.setSpanContext(context.active(), { traceId: log.traceId, spanId: log.spanId, traceFlags: 1 })
          : undefined;
      logger.emit({
        ...(log.body !== undefined ? { body: log.body } : {}),
        ...(log.attributes ? { attributes: log.attributes } : {}),
        ...(log.timeUnixNano ? { timestamp: hrTime(log.timeUnixNano) } : {}),
        ...(ctx ? { context: ctx } : {}),
      });
    }
    out.push(...exporter.getFinishedLogRecords());
  }
  return out;
}

export function sdkLogsProtobuf(resources: SdkLogResource[]): Buffer {
  return Buffer.from(ProtobufLogsSerializer.serializeRequest(sdkLogRecords(resources))!);
}

export function sdkLogsJson(resources: SdkLogResource[]): Buffer {
  return Buffer.from(JsonLogsSerializer.serializeRequest(sdkLogRecords(resources))!);
}

export interface SdkSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: SpanKind;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: Record<string, string | number | boolean>;
  status?: SpanStatusCode;
}

export interface SdkSpanResource {
  attributes: Record<string, string>;
  spans: SdkSpan[];
}

/** Spans with chosen ids: a one-shot id generator hands the SDK the ids the test wants. */
export function sdkSpans(resources: SdkSpanResource[]): ReadableSpan[] {
  const out: ReadableSpan[] = [];
  for (const res of resources) {
    let next: SdkSpan | undefined;
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes(res.attributes),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
      idGenerator: {
        generateTraceId: () => next!.traceId,
        generateSpanId: () => next!.spanId,
      },
    });
    const tracer = provider.getTracer('envoy');
    for (const s of res.spans) {
      next = s;
      const parentCtx = s.parentSpanId
        ? trace.setSpanContext(context.active(), { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: 1, isRemote: true })
        : undefined;
      const span = tracer.startSpan(
        s.name,
        { kind: s.kind, startTime: hrTime(s.startTimeUnixNano), ...(s.attributes ? { attributes: s.attributes } : {}), root: !parentCtx },
        parentCtx,
      );
      if (s.status !== undefined) span.setStatus({ code: s.status });
      span.end(hrTime(s.endTimeUnixNano));
    }
    out.push(...exporter.getFinishedSpans());
  }
  return out;
}

export function sdkTracesProtobuf(resources: SdkSpanResource[]): Buffer {
  return Buffer.from(ProtobufTraceSerializer.serializeRequest(sdkSpans(resources))!);
}

export function sdkTracesJson(resources: SdkSpanResource[]): Buffer {
  return Buffer.from(JsonTraceSerializer.serializeRequest(sdkSpans(resources))!);
}
