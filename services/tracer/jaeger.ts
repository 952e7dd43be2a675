/**
 * Jaeger Thrift export (`MESHLENS_JAEGER_PROTOCOL=thrift`): `POST <collector>/api/traces`,
 * `application/x-thrift`, one jaeger.thrift `Batch` per emitting service in the Thrift binary protocol.
 *
 * The encoding is written here rather than taken from `@opentelemetry/exporter-jaeger`: that exporter wants the
 * OTel SDK's span objects, and its HTTP sender (jaeger-client's) reports every answer as a success, so neither a
 * 503 nor a Retry-After would reach the queue's retry handling. The binary protocol is small: a struct is its
 * fields, each a type byte and an i16 id before the value, then a stop byte; integers are big-endian; a string is
 * an i32 length and its bytes; a list is an element type byte and an i32 count before the elements.
 */
import type { Span, SpanKind } from '../../lib/model';
import { httpSender } from './otlp';
import type { SendResult, Sender } from './queue';

/** Thrift binary protocol type ids. */
const T_STOP = 0;
const T_BOOL = 2;
const T_I32 = 8;
const T_I64 = 10;
const T_STRING = 11;
const T_STRUCT = 12;
const T_LIST = 15;

/** jaeger.thrift TagType and SpanRefType. */
const TAG_STRING = 0;
const TAG_BOOL = 2;
const REF_CHILD_OF = 0;
/** Span.flags: the span was sampled (it was: the tracer only exports what it keeps). */
const FLAG_SAMPLED = 1;

/** OpenTracing's `span.kind` values; unspecified and internal spans carry no tag (as the OTel Jaeger exporter). */
const KIND_TAG: Partial<Record<SpanKind, string>> = { client: 'client', server: 'server', producer: 'producer', consumer: 'consumer' };

export type JaegerTag = { key: string; vStr: string } | { key: string; vBool: boolean };

class Writer {
  private chunks: Buffer[] = [];

  byte(v: number): void {
    this.chunks.push(Buffer.from([v]));
  }
  i16(v: number): void {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.chunks.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.chunks.push(b);
  }
  i64(v: bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt.asIntN(64, v));
    this.chunks.push(b);
  }
  field(type: number, id: number): void {
    this.byte(type);
    this.i16(id);
  }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.i32(b.length);
    this.chunks.push(b);
  }
  list<T>(type: number, items: readonly T[], each: (item: T) => void): void {
    this.byte(type);
    this.i32(items.length);
    for (const item of items) each(item);
  }
  stop(): void {
    this.byte(T_STOP);
  }
  finish(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** 16 hex digits (or '') → a signed i64 as Jaeger reads it: the same 8 bytes. */
function idBits(hex16: string): bigint {
  return hex16 === '' ? 0n : BigInt.asIntN(64, BigInt(`0x${hex16}`));
}

/** Span tags: `span.kind`, every tag the span came with (as strings), then what meshlens derived and it lacked. */
export function jaegerTags(s: Span): JaegerTag[] {
  const tags: JaegerTag[] = [];
  const kind = KIND_TAG[s.kind];
  if (kind !== undefined && s.attributes['span.kind'] === undefined) tags.push({ key: 'span.kind', vStr: kind });
  for (const key in s.attributes) tags.push({ key, vStr: s.attributes[key] as string });
  // Jaeger's UI marks a span failed by a boolean `error` tag; a span with its own `error` tag keeps it as it came.
  if (s.error && s.attributes['error'] === undefined) tags.push({ key: 'error', vBool: true });
  const derived: Array<[string, string]> = [
    ['http.status_code', s.responseCode > 0 ? String(s.responseCode) : ''],
    ['upstream_cluster', s.upstreamCluster],
    ['response_flags', s.responseFlags],
    ['meshlens.destination_service', s.destinationService],
    ['meshlens.subset', s.destinationSubset],
  ];
  for (const [key, value] of derived) if (value !== '' && s.attributes[key] === undefined) tags.push({ key, vStr: value });
  return tags;
}

function writeTag(w: Writer, t: JaegerTag): void {
  w.field(T_STRING, 1);
  w.string(t.key);
  w.field(T_I32, 2);
  if ('vBool' in t) {
    w.i32(TAG_BOOL);
    w.field(T_BOOL, 5);
    w.byte(t.vBool ? 1 : 0);
  } else {
    w.i32(TAG_STRING);
    w.field(T_STRING, 3);
    w.string(t.vStr);
  }
  w.stop();
}

function writeSpan(w: Writer, s: Span): void {
  const traceHigh = idBits(s.traceId.slice(0, 16));
  const traceLow = idBits(s.traceId.slice(16, 32));
  const parent = idBits(s.parentSpanId);
  w.field(T_I64, 1);
  w.i64(traceLow);
  w.field(T_I64, 2);
  w.i64(traceHigh);
  w.field(T_I64, 3);
  w.i64(idBits(s.spanId));
  w.field(T_I64, 4);
  w.i64(parent);
  w.field(T_STRING, 5);
  w.string(s.name);
  if (s.parentSpanId !== '') {
    w.field(T_LIST, 6);
    w.list(T_STRUCT, [parent], (p) => {
      w.field(T_I32, 1);
      w.i32(REF_CHILD_OF);
      w.field(T_I64, 2);
      w.i64(traceLow);
      w.field(T_I64, 3);
      w.i64(traceHigh);
      w.field(T_I64, 4);
      w.i64(p);
      w.stop();
    });
  }
  w.field(T_I32, 7);
  w.i32(FLAG_SAMPLED);
  // Microseconds since the epoch, and the duration in microseconds (the precision spans are kept at).
  const startUs = Math.round(s.startTimeMs * 1000);
  w.field(T_I64, 8);
  w.i64(BigInt(startUs));
  w.field(T_I64, 9);
  w.i64(BigInt(Math.round((s.startTimeMs + s.durationMs) * 1000) - startUs));
  w.field(T_LIST, 10);
  w.list(T_STRUCT, jaegerTags(s), (t) => writeTag(w, t));
  w.stop();
}

/** One jaeger.thrift `Batch`: the process (`serviceName`) and its spans. */
export function encodeJaegerBatch(serviceName: string, spans: readonly Span[]): Buffer {
  const w = new Writer();
  w.field(T_STRUCT, 1);
  w.field(T_STRING, 1);
  w.string(serviceName);
  w.stop();
  w.field(T_LIST, 2);
  w.list(T_STRUCT, spans, (s) => writeSpan(w, s));
  w.stop();
  return w.finish();
}

function byService(spans: readonly Span[]): Map<string, Span[]> {
  const groups = new Map<string, Span[]>();
  for (const s of spans) {
    const list = groups.get(s.serviceName);
    if (list) list.push(s);
    else groups.set(s.serviceName, [s]);
  }
  return groups;
}

/**
 * A Sender to a Jaeger collector's `/api/traces` (the URL as given). A Batch has one process, so a batch of spans
 * from several services is one request per service, in turn. A retriable failure stops there; the queue retries the
 * same batch, and the services already accepted are not sent again. A refusal for good after some were accepted
 * counts only the refused service's spans as rejected.
 */
export function jaegerThriftSender(url: string, timeoutMs: number): Sender {
  const progress = new WeakMap<Span[], { done: Set<string>; rejected: number }>();
  return async (spans, signal) => {
    const state = progress.get(spans) ?? { done: new Set<string>(), rejected: 0 };
    progress.set(spans, state);
    let refusal: SendResult | undefined;
    for (const [service, list] of byService(spans)) {
      if (state.done.has(service)) continue;
      const post = httpSender({ url, contentType: 'application/x-thrift', encode: () => encodeJaegerBatch(service, list), timeoutMs });
      const result = await post(list, signal);
      if (!result.ok && result.retriable) return result;
      state.done.add(service);
      if (!result.ok) {
        refusal = result;
        state.rejected += list.length;
      }
    }
    progress.delete(spans);
    if (refusal !== undefined && state.rejected >= spans.length) return refusal;
    return { ok: true, rejected: state.rejected };
  };
}
