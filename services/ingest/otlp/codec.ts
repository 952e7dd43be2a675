/**
 * OTLP wire codecs for the logs and trace collector services (https://opentelemetry.io/docs/specs/otlp/).
 *
 * - Protobuf: the vendored opentelemetry-proto files (./proto, see its README) are loaded once with
 *   protobufjs reflection. The gRPC receiver uses the same files and these functions as its request
 *   deserializer / response serializer.
 * - OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): lowerCamelCase keys (and the
 *   snake_case proto names, which protojson also accepts), trace/span ids as hex (not base64, unlike plain
 *   protojson), enums as integers, 64-bit integers as decimal strings or JSON numbers.
 *
 * Both decoders produce the same plain shape: ids as lowercase hex strings, 64-bit times as bigint, and
 * AnyValue as a tagged union. Decoding never throws. A body that does not decode is a `malformed_protobuf` /
 * `malformed_json` Rejection, and so is one that decodes to nothing it could mean (only unknown fields, wrong wire
 * types); a well-formed body of an OTLP shape meshlens does not read (the pre-1.0 `instrumentation_library_*`
 * names, another signal's export) is `unsupported_record`. `{}` and empty lists are an empty export, as the spec
 * allows. Nothing is ever read as empty that held records (issue 9). A JSON log record or span whose own fields are malformed is kept with
 * `invalid` set, so the parser can reject that one record and keep its neighbours (OTLP partial success).
 */
import protobuf from 'protobufjs';
import { ok, reject, type RejectReason, type Result } from '../../../lib/model';
import { loadOtlpRoot, PROTO_FILES, PROTO_ROOT } from '../../../lib/otlp';
import { isObject, jsonForDeadLetter } from '../formats/json-values';

// The protos live in lib/otlp, shared with the tracer's exporter; re-exported for the receivers' tests.
export { PROTO_FILES, PROTO_ROOT };

/**
 * Nesting limit for AnyValue arrays/kvlists. Access-log attributes are flat. A deeper value is an attack or
 * a bug, and recursing into it could exhaust the stack.
 */
const MAX_ANY_VALUE_DEPTH = 32;

// ---------------------------------------------------------------------------------------------------------
// Decoded shape
// ---------------------------------------------------------------------------------------------------------

export type AnyValue =
  | { kind: 'empty' }
  | { kind: 'string'; value: string }
  | { kind: 'bool'; value: boolean }
  | { kind: 'int'; value: bigint }
  | { kind: 'double'; value: number }
  | { kind: 'bytes'; value: Uint8Array }
  | { kind: 'array'; values: AnyValue[] }
  | { kind: 'kvlist'; values: KeyValue[] };

export interface KeyValue {
  key: string;
  value: AnyValue;
}

export interface Resource {
  attributes: KeyValue[];
}

export interface InstrumentationScope {
  name: string;
  version: string;
  attributes: KeyValue[];
}

/** Why a JSON record could not be read; the parser turns it into a per-record rejection. */
export interface RecordProblem {
  reason: RejectReason;
  message: string;
}

export interface LogRecord {
  /** Nanoseconds since the Unix epoch; 0n = unknown. */
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  severityNumber: number;
  severityText: string;
  body: AnyValue;
  attributes: KeyValue[];
  flags: number;
  /** Lowercase hex as received ('' when absent). Not validated here: an invalid id only means "no trace". */
  traceId: string;
  spanId: string;
  /** OTLP ≥ 1.5 `event_name`: JSON only (the vendored 1.3-era protos skip field 12). */
  eventName: string;
  invalid?: RecordProblem;
  /** The record as received, kept only when `invalid` is set (its decoded fields are then incomplete). */
  source?: unknown;
}

export interface ScopeLogs {
  scope: InstrumentationScope;
  logRecords: LogRecord[];
  schemaUrl: string;
}

export interface ResourceLogs {
  resource: Resource;
  scopeLogs: ScopeLogs[];
  schemaUrl: string;
}

export interface ExportLogsRequest {
  resourceLogs: ResourceLogs[];
}

export interface SpanStatus {
  /** 0 UNSET, 1 OK, 2 ERROR. */
  code: number;
  message: string;
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  name: string;
  /** 0 UNSPECIFIED, 1 INTERNAL, 2 SERVER, 3 CLIENT, 4 PRODUCER, 5 CONSUMER. */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: KeyValue[];
  status: SpanStatus;
  flags: number;
  invalid?: RecordProblem;
  /** The span as received, kept only when `invalid` is set. */
  source?: unknown;
}

export interface ScopeSpans {
  scope: InstrumentationScope;
  spans: OtlpSpan[];
  schemaUrl: string;
}

export interface ResourceSpans {
  resource: Resource;
  scopeSpans: ScopeSpans[];
  schemaUrl: string;
}

export interface ExportTraceRequest {
  resourceSpans: ResourceSpans[];
}

export interface ExportLogsResponseInput {
  rejectedLogRecords: number;
  errorMessage: string;
}

export interface ExportTraceResponseInput {
  rejectedSpans: number;
  errorMessage: string;
}

// ---------------------------------------------------------------------------------------------------------
// Protobuf
// ---------------------------------------------------------------------------------------------------------

const ROOT = loadOtlpRoot();
const LOGS_REQUEST = ROOT.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
const LOGS_RESPONSE = ROOT.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse');
const TRACE_REQUEST = ROOT.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const TRACE_RESPONSE = ROOT.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');

/** The loaded protobufjs root, for callers that need descriptors (e.g. to build a typed gRPC service). */
export function otlpProtoRoot(): protobuf.Root {
  return ROOT;
}

/** Loose view of a protobufjs-decoded message: fields by camelCase name, oneofs by their virtual name. */
type Msg = Record<string, unknown>;

interface LongLike {
  low: number;
  high: number;
  unsigned?: boolean;
}

function isLongLike(v: unknown): v is LongLike {
  return typeof v === 'object' && v !== null && typeof (v as LongLike).low === 'number' && typeof (v as LongLike).high === 'number';
}

/** protobufjs gives 64-bit fields as Long (the `long` package is installed) or, without it, numbers. */
function toBigInt(v: unknown, signed: boolean): bigint {
  if (typeof v === 'number') return Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n;
  if (typeof v === 'bigint') return v;
  if (isLongLike(v)) {
    const u = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
    return signed ? BigInt.asIntN(64, u) : u;
  }
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  return 0n;
}

function hexOf(v: unknown): string {
  if (v instanceof Uint8Array) return v.length === 0 ? '' : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
  return '';
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function arr(v: unknown): Msg[] {
  return Array.isArray(v) ? (v as Msg[]) : [];
}

const EMPTY: AnyValue = Object.freeze({ kind: 'empty' }) as AnyValue;

function pbAnyValue(m: unknown, depth: number): AnyValue {
  if (typeof m !== 'object' || m === null) return EMPTY;
  const msg = m as Msg;
  if (depth > MAX_ANY_VALUE_DEPTH) throw new RangeError(`AnyValue nested deeper than ${MAX_ANY_VALUE_DEPTH}`);
  // `value` is protobufjs's virtual oneof property: the name of the member that is set, or null.
  switch (msg.value) {
    case 'stringValue':
      return { kind: 'string', value: str(msg.stringValue) };
    case 'boolValue':
      return { kind: 'bool', value: msg.boolValue === true };
    case 'intValue':
      return { kind: 'int', value: toBigInt(msg.intValue, true) };
    case 'doubleValue':
      return { kind: 'double', value: typeof msg.doubleValue === 'number' ? msg.doubleValue : 0 };
    case 'bytesValue':
      return { kind: 'bytes', value: msg.bytesValue instanceof Uint8Array ? msg.bytesValue : new Uint8Array(0) };
    case 'arrayValue':
      return { kind: 'array', values: arr((msg.arrayValue as Msg | null)?.values).map((v) => pbAnyValue(v, depth + 1)) };
    case 'kvlistValue':
      return { kind: 'kvlist', values: pbKeyValues((msg.kvlistValue as Msg | null)?.values, depth + 1) };
    default:
      return EMPTY;
  }
}

function pbKeyValues(list: unknown, depth: number): KeyValue[] {
  return arr(list).map((kv) => ({ key: str(kv.key), value: pbAnyValue(kv.value, depth) }));
}

function pbResource(m: unknown): Resource {
  return { attributes: pbKeyValues((m as Msg | null)?.attributes, 0) };
}

function pbScope(m: unknown): InstrumentationScope {
  const s = (m ?? {}) as Msg;
  return { name: str(s.name), version: str(s.version), attributes: pbKeyValues(s.attributes, 0) };
}

/**
 * A record whose AnyValues nest past MAX_ANY_VALUE_DEPTH is marked invalid on its own, like a malformed JSON
 * record. protobufjs has already decoded the whole message by this point.
 */
function pbLogRecord(r: Msg): LogRecord {
  try {
    return pbLogRecordFields(r);
  } catch (err) {
    const rec = emptyLogRecord();
    rec.invalid = { reason: 'malformed_protobuf', message: describe(err) };
    return rec;
  }
}

function pbLogRecordFields(r: Msg): LogRecord {
  return {
    timeUnixNano: toBigInt(r.timeUnixNano, false),
    observedTimeUnixNano: toBigInt(r.observedTimeUnixNano, false),
    severityNumber: num(r.severityNumber),
    severityText: str(r.severityText),
    body: pbAnyValue(r.body, 0),
    attributes: pbKeyValues(r.attributes, 0),
    flags: num(r.flags),
    traceId: hexOf(r.traceId),
    spanId: hexOf(r.spanId),
    eventName: '',
  };
}

function pbSpan(s: Msg): OtlpSpan {
  try {
    return pbSpanFields(s);
  } catch (err) {
    const span = emptySpan();
    span.traceId = hexOf(s.traceId);
    span.spanId = hexOf(s.spanId);
    span.invalid = { reason: 'malformed_protobuf', message: describe(err) };
    return span;
  }
}

function pbSpanFields(s: Msg): OtlpSpan {
  const status = (s.status ?? {}) as Msg;
  return {
    traceId: hexOf(s.traceId),
    spanId: hexOf(s.spanId),
    parentSpanId: hexOf(s.parentSpanId),
    traceState: str(s.traceState),
    name: str(s.name),
    kind: num(s.kind),
    startTimeUnixNano: toBigInt(s.startTimeUnixNano, false),
    endTimeUnixNano: toBigInt(s.endTimeUnixNano, false),
    attributes: pbKeyValues(s.attributes, 0),
    status: { code: num(status.code), message: str(status.message) },
    flags: num(s.flags),
  };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A problem the wire scan found; caught in the decoders and turned into their Rejection. */
class WireShapeError extends Error {
  constructor(
    readonly reason: RejectReason,
    message: string,
  ) {
    super(message);
  }
}

/** One message level the wire scan checks: the protobufjs type, its name in paths, the list it descends into. */
interface WireLevel {
  type: protobuf.Type;
  /** Proto name of the message, for messages (`ResourceLogs`). */
  name: string;
  child?: { id: number; name: string; level: WireLevel };
  /** A field number this level had before OTLP 1.0 and no longer reads. */
  legacy?: { id: number; name: string; instead: string };
  /** Keys but none known means "not this message": refused instead of read as empty. */
  requireKnown: boolean;
}

const BASIC_WIRE_TYPES = protobuf.types.basic as Readonly<Record<string, number>>;
const PACKABLE = protobuf.types.packed as Readonly<Record<string, number>>;

function wireLevel(type: protobuf.Type, requireKnown: boolean, child?: { field: string; name: string; level: WireLevel }, legacy?: WireLevel['legacy']): WireLevel {
  const level: WireLevel = { type, name: type.name, requireKnown, legacy };
  if (child) level.child = { id: type.fields[child.field]!.id, name: child.name, level: child.level };
  return level;
}

/**
 * The levels the scan walks for each request: request → resource entries → scope entries → records (only their
 * own fields' wire types, not inside attributes). Field 1000 is the deprecated `instrumentation_library_logs` /
 * `_spans` of opentelemetry-proto v0.15–v0.18 (`reserved 1000` since), which protobufjs would skip as unknown.
 */
function wireLevels(request: protobuf.Type, resource: string, scope: string, records: string, legacy: string): WireLevel {
  const resourceType = request.fields[camel(resource)]!.resolvedType as protobuf.Type;
  const scopeType = resourceType.fields[camel(scope)]!.resolvedType as protobuf.Type;
  const recordType = scopeType.fields[camel(records)]!.resolvedType as protobuf.Type;
  const recordLevel = wireLevel(recordType, false);
  const scopeLevel = wireLevel(scopeType, true, { field: camel(records), name: records, level: recordLevel });
  const resourceLevel = wireLevel(resourceType, true, { field: camel(scope), name: scope, level: scopeLevel }, { id: 1000, name: legacy, instead: scope });
  return wireLevel(request, true, { field: camel(resource), name: resource, level: resourceLevel });
}

function camel(snake: string): string {
  return snake.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

const LOGS_WIRE = wireLevels(LOGS_REQUEST, 'resource_logs', 'scope_logs', 'log_records', 'instrumentation_library_logs');
const TRACE_WIRE = wireLevels(TRACE_REQUEST, 'resource_spans', 'scope_spans', 'spans', 'instrumentation_library_spans');

/** The wire type a field is written with: enums as varints, messages as LEN, scalars per protobufjs's table. */
function expectedWireType(f: protobuf.Field): number {
  if (f.resolvedType instanceof protobuf.Enum) return 0;
  if (f.resolvedType instanceof protobuf.Type) return 2;
  return BASIC_WIRE_TYPES[f.type] ?? 2;
}

/**
 * Walks the message levels above the records and checks, before protobufjs decodes anything, what protobufjs
 * would let through silently: a known field with the wrong wire type (protobufjs reads it as its declared type
 * and decodes garbage, e.g. a trace export on the logs endpoint), a level that holds only unknown fields (read
 * as empty: the body would be answered as an empty export) and the pre-1.0 field 1000. Unknown fields next to
 * known ones are skipped, as proto3 requires for forward compatibility. Cost: one tag read per field of the
 * records, no allocation.
 */
function scanWire(r: protobuf.Reader, end: number, level: WireLevel, where: string, request: string): void {
  let known = 0;
  let unknown = 0;
  let index = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    const id = tag >>> 3;
    const wt = tag & 7;
    if (id === 0) throw new WireShapeError('malformed_protobuf', `${where}: field number 0 does not exist in protobuf`);
    const f = level.type.fieldsById[id];
    if (f === undefined) {
      if (level.legacy && id === level.legacy.id) {
        throw new WireShapeError(
          'unsupported_record',
          `${where} has field ${id} (${level.legacy.name}), the pre-1.0 OTLP field opentelemetry-proto deleted in v0.19; meshlens reads OTLP 1.x only: send ${level.legacy.instead} (field ${level.child!.id}) instead (upgrade the exporter or collector)`,
        );
      }
      unknown++;
      r.skipType(wt);
      continue;
    }
    known++;
    const expected = expectedWireType(f);
    if (wt !== expected && !(wt === 2 && f.repeated && PACKABLE[f.type] !== undefined)) {
      throw new WireShapeError(
        'malformed_protobuf',
        `${where}: field ${id} (${f.name}) of ${level.name} has wire type ${wt}, expected ${expected}: not an ${request} (another signal's export?)`,
      );
    }
    if (level.child && id === level.child.id) {
      const length = r.uint32();
      const childEnd = r.pos + length;
      if (childEnd > end) throw new WireShapeError('malformed_protobuf', `${where}: ${level.child.name} entry runs past the end of its message (truncated body?)`);
      scanWire(r, childEnd, level.child.level, `${where === '' ? '' : where + '.'}${level.child.name}[${index++}]`, request);
    } else {
      r.skipType(wt);
    }
  }
  if (r.pos > end) throw new WireShapeError('malformed_protobuf', `${where || 'body'}: a field runs past the end of its message (truncated body?)`);
  if (level.requireKnown && known === 0 && unknown > 0) {
    throw new WireShapeError('malformed_protobuf', `${where || 'body'} holds ${unknown} field(s), none of them a field of ${level.name}`);
  }
}

/** Node's Buffer decodes strings with U+FFFD for invalid UTF-8; protobufjs's own decoder (used for a plain Uint8Array) can leave lone surrogates. */
function asBuffer(buf: Buffer | Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Scan, then decode; a scan or decode failure is the body's Rejection. */
function decodeChecked(buf: Buffer | Uint8Array, request: protobuf.Type, levels: WireLevel): Result<Msg> {
  const bytes = asBuffer(buf);
  try {
    scanWire(protobuf.Reader.create(bytes), bytes.length, levels, '', request.name);
    return ok(request.decode(bytes) as unknown as Msg);
  } catch (err) {
    if (err instanceof WireShapeError) return reject(err.reason, `not a readable OTLP ${request.name}: ${err.message}`);
    return reject('malformed_protobuf', `not an OTLP ${request.name}: ${describe(err)}`);
  }
}

/** `ExportLogsServiceRequest` from protobuf bytes (OTLP/gRPC message or OTLP/HTTP `application/x-protobuf`). */
export function decodeExportLogsRequest(buf: Buffer | Uint8Array): Result<ExportLogsRequest> {
  const decoded = decodeChecked(buf, LOGS_REQUEST, LOGS_WIRE);
  if (!decoded.ok) return decoded;
  const msg = decoded.value;
  try {
    return ok({
      resourceLogs: arr(msg.resourceLogs).map((rl) => ({
        resource: pbResource(rl.resource),
        schemaUrl: str(rl.schemaUrl),
        scopeLogs: arr(rl.scopeLogs).map((sl) => ({
          scope: pbScope(sl.scope),
          schemaUrl: str(sl.schemaUrl),
          logRecords: arr(sl.logRecords).map(pbLogRecord),
        })),
      })),
    });
  } catch (err) {
    return reject('malformed_protobuf', `not an OTLP ExportLogsServiceRequest: ${describe(err)}`);
  }
}

/** `ExportTraceServiceRequest` from protobuf bytes. */
export function decodeExportTraceRequest(buf: Buffer | Uint8Array): Result<ExportTraceRequest> {
  const decoded = decodeChecked(buf, TRACE_REQUEST, TRACE_WIRE);
  if (!decoded.ok) return decoded;
  const msg = decoded.value;
  try {
    return ok({
      resourceSpans: arr(msg.resourceSpans).map((rs) => ({
        resource: pbResource(rs.resource),
        schemaUrl: str(rs.schemaUrl),
        scopeSpans: arr(rs.scopeSpans).map((ss) => ({
          scope: pbScope(ss.scope),
          schemaUrl: str(ss.schemaUrl),
          spans: arr(ss.spans).map(pbSpan),
        })),
      })),
    });
  } catch (err) {
    return reject('malformed_protobuf', `not an OTLP ExportTraceServiceRequest: ${describe(err)}`);
  }
}

/**
 * `ExportLogsServiceResponse`. With nothing rejected and no message, `partial_success` is left unset: the
 * spec says an empty one "is equivalent to it not being set" and full success leaves it out.
 */
export function encodeExportLogsResponse(r: ExportLogsResponseInput): Buffer {
  const body = partialSuccess('rejectedLogRecords', r.rejectedLogRecords, r.errorMessage);
  return Buffer.from(LOGS_RESPONSE.encode(LOGS_RESPONSE.fromObject(body)).finish());
}

/** `ExportTraceServiceResponse`, same rules as the logs response. */
export function encodeExportTraceResponse(r: ExportTraceResponseInput): Buffer {
  const body = partialSuccess('rejectedSpans', r.rejectedSpans, r.errorMessage);
  return Buffer.from(TRACE_RESPONSE.encode(TRACE_RESPONSE.fromObject(body)).finish());
}

/** OTLP/JSON `ExportLogsServiceResponse` (the reply uses the request's encoding). */
export function encodeExportLogsResponseJson(r: ExportLogsResponseInput): Buffer {
  return Buffer.from(JSON.stringify(partialSuccess('rejectedLogRecords', r.rejectedLogRecords, r.errorMessage)));
}

/** OTLP/JSON `ExportTraceServiceResponse`. */
export function encodeExportTraceResponseJson(r: ExportTraceResponseInput): Buffer {
  return Buffer.from(JSON.stringify(partialSuccess('rejectedSpans', r.rejectedSpans, r.errorMessage)));
}

/** The response object: `partialSuccess` only when something was rejected or there is something to say. */
function partialSuccess(field: 'rejectedLogRecords' | 'rejectedSpans', rejected: number, errorMessage: string): object {
  return rejected > 0 || errorMessage.length > 0 ? { partialSuccess: { [field]: rejected, errorMessage } } : {};
}

// ---------------------------------------------------------------------------------------------------------
// OTLP/JSON
// ---------------------------------------------------------------------------------------------------------

type Json = Record<string, unknown>;

/** Thrown inside the JSON walk for one record; caught where the record's `invalid` is set. */
class JsonShapeError extends Error {
  constructor(
    readonly reason: RejectReason,
    message: string,
  ) {
    super(message);
  }
}

/** A field by its lowerCamelCase JSON name or its proto (snake_case) name. */
function field(o: Json, camel: string, snake: string): unknown {
  const v = o[camel];
  return v !== undefined ? v : o[snake];
}

function jsonList(o: Json, camel: string, snake: string, what: string): unknown[] {
  const v = field(o, camel, snake);
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new JsonShapeError('malformed_json', `${what} is not an array`);
  return v;
}

function jsonString(o: Json, camel: string, snake: string, what: string): string {
  const v = field(o, camel, snake);
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new JsonShapeError('malformed_json', `${what} is not a string`);
  return v;
}

const UINT64_MAX = (1n << 64n) - 1n;

/** 64-bit unsigned time: decimal string or JSON number (OTLP/JSON allows both). */
function jsonUnixNano(o: Json, camel: string, snake: string): bigint {
  const v = field(o, camel, snake);
  if (v === undefined || v === null) return 0n;
  // JSON numbers above 2^53 arrive rounded (JSON.parse); still far below a millisecond of error.
  const n = typeof v === 'string' && /^\d{1,20}$/.test(v) ? BigInt(v) : typeof v === 'number' && Number.isInteger(v) && v >= 0 ? BigInt(v) : -1n;
  // fixed64: twenty digits reach past 2^64 - 1, which no sender can have meant.
  if (n < 0n || n > UINT64_MAX) throw new JsonShapeError('invalid_timestamp', `${camel} ${JSON.stringify(v)} is not a non-negative 64-bit integer`);
  return n;
}

/** A 32-bit integer field (enums as integers per OTLP/JSON, flags). */
function jsonInt(o: Json, camel: string, snake: string, names?: Readonly<Record<string, number>>): number {
  const v = field(o, camel, snake);
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  // protojson also accepts enum value names; OTLP/JSON senders should use integers, but be lenient.
  if (typeof v === 'string' && names && names[v] !== undefined) return names[v]!;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  throw new JsonShapeError('invalid_field', `${camel} ${JSON.stringify(v)} is not an integer`);
}

/** Trace and span ids are hex in OTLP/JSON (not base64). Kept as lowercase text; validity is the parser's call. */
function jsonId(o: Json, camel: string, snake: string): string {
  const v = field(o, camel, snake);
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new JsonShapeError('malformed_json', `${camel} is not a hex string`);
  return v.toLowerCase();
}

const INT64_RE = /^-?\d{1,19}$/;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

function jsonAnyValue(v: unknown, depth: number): AnyValue {
  if (v === undefined || v === null) return EMPTY;
  if (!isObject(v)) throw new JsonShapeError('malformed_json', 'AnyValue is not an object');
  if (depth > MAX_ANY_VALUE_DEPTH) throw new JsonShapeError('malformed_json', `AnyValue nested deeper than ${MAX_ANY_VALUE_DEPTH}`);
  let x = field(v, 'stringValue', 'string_value');
  if (x !== undefined) {
    if (typeof x !== 'string') throw new JsonShapeError('malformed_json', 'stringValue is not a string');
    return { kind: 'string', value: x };
  }
  x = field(v, 'boolValue', 'bool_value');
  if (x !== undefined) {
    if (typeof x !== 'boolean') throw new JsonShapeError('malformed_json', 'boolValue is not a boolean');
    return { kind: 'bool', value: x };
  }
  x = field(v, 'intValue', 'int_value');
  if (x !== undefined) {
    const n = typeof x === 'string' && INT64_RE.test(x) ? BigInt(x) : typeof x === 'number' && Number.isInteger(x) ? BigInt(x) : undefined;
    // Out of range is refused, not wrapped: BigInt.asIntN would turn 9999999999999999999 into a negative number.
    if (n !== undefined && n >= INT64_MIN && n <= INT64_MAX) return { kind: 'int', value: n };
    throw new JsonShapeError('invalid_number', `intValue ${JSON.stringify(x)} is not a 64-bit integer`);
  }
  x = field(v, 'doubleValue', 'double_value');
  if (x !== undefined) {
    if (typeof x === 'number') return { kind: 'double', value: x };
    // protojson spells non-finite doubles as strings.
    if (x === 'NaN' || x === 'Infinity' || x === '-Infinity') return { kind: 'double', value: Number(x) };
    if (typeof x === 'string' && x.trim() !== '' && Number.isFinite(Number(x))) return { kind: 'double', value: Number(x) };
    throw new JsonShapeError('invalid_number', `doubleValue ${JSON.stringify(x)} is not a number`);
  }
  x = field(v, 'bytesValue', 'bytes_value');
  if (x !== undefined) {
    // Only trace/span ids are hex in OTLP/JSON; bytes values keep protojson's base64.
    if (typeof x !== 'string') throw new JsonShapeError('malformed_json', 'bytesValue is not a base64 string');
    return { kind: 'bytes', value: new Uint8Array(Buffer.from(x, 'base64')) };
  }
  x = field(v, 'arrayValue', 'array_value');
  if (x !== undefined) {
    if (!isObject(x)) throw new JsonShapeError('malformed_json', 'arrayValue is not an object');
    return { kind: 'array', values: jsonList(x, 'values', 'values', 'arrayValue.values').map((e) => jsonAnyValue(e, depth + 1)) };
  }
  x = field(v, 'kvlistValue', 'kvlist_value');
  if (x !== undefined) {
    if (!isObject(x)) throw new JsonShapeError('malformed_json', 'kvlistValue is not an object');
    return { kind: 'kvlist', values: jsonKeyValues(jsonList(x, 'values', 'values', 'kvlistValue.values'), depth + 1) };
  }
  return EMPTY;
}

function jsonKeyValues(list: unknown[], depth: number): KeyValue[] {
  return list.map((kv) => {
    if (!isObject(kv)) throw new JsonShapeError('malformed_json', 'attribute is not a {key, value} object');
    const key = kv.key;
    if (typeof key !== 'string') throw new JsonShapeError('malformed_json', 'attribute key is not a string');
    return { key, value: jsonAnyValue(kv.value, depth) };
  });
}

function jsonAttributes(o: Json): KeyValue[] {
  return jsonKeyValues(jsonList(o, 'attributes', 'attributes', 'attributes'), 0);
}

function jsonResource(v: unknown): Resource {
  if (v === undefined || v === null) return { attributes: [] };
  if (!isObject(v)) throw new JsonShapeError('malformed_json', 'resource is not an object');
  return { attributes: jsonAttributes(v) };
}

function jsonScope(v: unknown): InstrumentationScope {
  if (v === undefined || v === null) return { name: '', version: '', attributes: [] };
  if (!isObject(v)) throw new JsonShapeError('malformed_json', 'scope is not an object');
  return { name: jsonString(v, 'name', 'name', 'scope.name'), version: jsonString(v, 'version', 'version', 'scope.version'), attributes: jsonAttributes(v) };
}

function problemOf(err: unknown): RecordProblem {
  if (err instanceof JsonShapeError) return { reason: err.reason, message: err.message };
  // A RangeError from a pathological value; the record is unreadable, not the whole body.
  return { reason: 'malformed_json', message: describe(err) };
}

const SPAN_KIND_NAMES: Readonly<Record<string, number>> = Object.freeze({
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
});
const STATUS_CODE_NAMES: Readonly<Record<string, number>> = Object.freeze({ STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 });

function emptyLogRecord(): LogRecord {
  return {
    timeUnixNano: 0n,
    observedTimeUnixNano: 0n,
    severityNumber: 0,
    severityText: '',
    body: EMPTY,
    attributes: [],
    flags: 0,
    traceId: '',
    spanId: '',
    eventName: '',
  };
}

function jsonLogRecord(v: unknown): LogRecord {
  const rec = emptyLogRecord();
  try {
    if (!isObject(v)) throw new JsonShapeError('malformed_json', 'log record is not an object');
    rec.timeUnixNano = jsonUnixNano(v, 'timeUnixNano', 'time_unix_nano');
    rec.observedTimeUnixNano = jsonUnixNano(v, 'observedTimeUnixNano', 'observed_time_unix_nano');
    // meshlens does not use severity (Envoy sets none): a malformed one must not cost the record.
    const sev = field(v, 'severityNumber', 'severity_number');
    rec.severityNumber = typeof sev === 'number' && Number.isInteger(sev) ? sev : 0;
    rec.severityText = jsonString(v, 'severityText', 'severity_text', 'severityText');
    rec.body = jsonAnyValue(v.body, 0);
    rec.attributes = jsonAttributes(v);
    rec.flags = jsonInt(v, 'flags', 'flags');
    rec.traceId = jsonId(v, 'traceId', 'trace_id');
    rec.spanId = jsonId(v, 'spanId', 'span_id');
    rec.eventName = jsonString(v, 'eventName', 'event_name', 'eventName');
  } catch (err) {
    rec.invalid = problemOf(err);
    rec.source = v;
  }
  return rec;
}

function emptySpan(): OtlpSpan {
  return {
    traceId: '',
    spanId: '',
    parentSpanId: '',
    traceState: '',
    name: '',
    kind: 0,
    startTimeUnixNano: 0n,
    endTimeUnixNano: 0n,
    attributes: [],
    status: { code: 0, message: '' },
    flags: 0,
  };
}

function jsonSpan(v: unknown): OtlpSpan {
  const span = emptySpan();
  try {
    if (!isObject(v)) throw new JsonShapeError('malformed_json', 'span is not an object');
    span.traceId = jsonId(v, 'traceId', 'trace_id');
    span.spanId = jsonId(v, 'spanId', 'span_id');
    span.parentSpanId = jsonId(v, 'parentSpanId', 'parent_span_id');
    span.traceState = jsonString(v, 'traceState', 'trace_state', 'traceState');
    span.name = jsonString(v, 'name', 'name', 'name');
    span.kind = jsonInt(v, 'kind', 'kind', SPAN_KIND_NAMES);
    span.startTimeUnixNano = jsonUnixNano(v, 'startTimeUnixNano', 'start_time_unix_nano');
    span.endTimeUnixNano = jsonUnixNano(v, 'endTimeUnixNano', 'end_time_unix_nano');
    span.attributes = jsonAttributes(v);
    span.flags = jsonInt(v, 'flags', 'flags');
    const status = v.status;
    if (status !== undefined && status !== null) {
      if (!isObject(status)) throw new JsonShapeError('malformed_json', 'status is not an object');
      span.status = { code: jsonInt(status, 'code', 'code', STATUS_CODE_NAMES), message: jsonString(status, 'message', 'message', 'status.message') };
    }
  } catch (err) {
    span.invalid = problemOf(err);
    span.source = v;
  }
  return span;
}

function parseJsonBody(buf: Buffer | Uint8Array | string): Result<Json> {
  let parsed: unknown;
  try {
    let text = typeof buf === 'string' ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8');
    // RFC 8259 §8.1: a parser may ignore a leading byte order mark (Windows tools write one); JSON.parse does not.
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    parsed = JSON.parse(text);
  } catch (err) {
    return reject('malformed_json', `body is not JSON: ${describe(err)}`);
  }
  if (!isObject(parsed)) return reject('malformed_json', 'body is not a JSON object');
  return ok(parsed);
}

/**
 * What one signal's OTLP/JSON calls its lists, and the pre-1.0 names of them. opentelemetry-proto v0.15 renamed
 * `instrumentation_library_*` to `scope_*` (keeping the old field as deprecated number 1000) and v0.19 deleted the
 * old names (https://github.com/open-telemetry/opentelemetry-proto/blob/main/CHANGELOG.md); the early logs protos
 * also called `log_records` `logs` (the spec's own pre-1.0 file examples, test/fixtures/otlp/otel-spec-json-file-*).
 */
interface JsonSignal {
  request: string;
  /** `[lowerCamelCase, snake_case]` of each list. */
  resources: readonly [string, string];
  scopes: readonly [string, string];
  records: readonly [string, string];
  /** The pre-1.0 name of `scopes` in a resource entry. */
  legacyScopes: readonly [string, string];
  /** The pre-1.0 name of `records` in a scope entry, when it had another one. */
  legacyRecords?: string;
  /** Where this signal is sent, for the message that tells a sender it used the wrong endpoint. */
  endpoint: string;
}

const LOGS_JSON: JsonSignal = {
  request: 'ExportLogsServiceRequest',
  resources: ['resourceLogs', 'resource_logs'],
  scopes: ['scopeLogs', 'scope_logs'],
  records: ['logRecords', 'log_records'],
  legacyScopes: ['instrumentationLibraryLogs', 'instrumentation_library_logs'],
  legacyRecords: 'logs',
  endpoint: 'POST /v1/logs (gRPC LogsService/Export)',
};

const TRACES_JSON: JsonSignal = {
  request: 'ExportTraceServiceRequest',
  resources: ['resourceSpans', 'resource_spans'],
  scopes: ['scopeSpans', 'scope_spans'],
  records: ['spans', 'spans'],
  legacyScopes: ['instrumentationLibrarySpans', 'instrumentation_library_spans'],
  endpoint: 'POST /v1/traces (gRPC TraceService/Export)',
};

/** Top-level lists of the OTLP signals meshlens does not take at all. */
const OTHER_SIGNALS: ReadonlyArray<readonly [string, string]> = [
  ['resourceMetrics', 'metrics'],
  ['resource_metrics', 'metrics'],
  ['resourceProfiles', 'profiles'],
  ['resource_profiles', 'profiles'],
];

const PRE_1_0 = 'is a pre-1.0 OTLP/JSON name (opentelemetry-proto renamed the InstrumentationLibrary fields to Scope in v0.15 and deleted them in v0.19); meshlens reads OTLP 1.x only:';
const PRE_1_0_RECORDS = 'is the name the early (pre-1.0) logs protos gave the records; meshlens reads OTLP 1.x only:';

/** Present with something in it: `null` and `[]` carry nothing, so a sender writing them loses nothing. */
function holdsSomething(v: unknown): boolean {
  return v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);
}

/** Which of the names is present (camelCase first), undefined when neither. */
function presentName(o: Json, names: readonly [string, string]): string | undefined {
  if (o[names[0]] !== undefined && Object.prototype.hasOwnProperty.call(o, names[0])) return names[0];
  if (o[names[1]] !== undefined && Object.prototype.hasOwnProperty.call(o, names[1])) return names[1];
  return undefined;
}

/** Up to five of an object's keys, quoted and cut short, for a message. */
function someKeys(o: Json): string {
  const keys = Object.keys(o);
  const shown = keys.slice(0, 5).map((k) => JSON.stringify(k.length > 40 ? k.slice(0, 40) + '…' : k));
  return shown.join(', ') + (keys.length > 5 ? `, … (${keys.length} keys)` : '');
}

/**
 * An entry that has keys but none this level knows is not an entry of this message: reading it as empty would
 * drop whatever it holds without a word. Unknown keys next to known ones are ignored, as the OTLP spec asks of
 * JSON receivers for forward compatibility (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding).
 */
function requireKnownKey(o: Json, known: readonly string[], where: string, expected: string): void {
  for (const k of known) if (o[k] !== undefined && Object.prototype.hasOwnProperty.call(o, k)) return;
  const keys = Object.keys(o);
  if (keys.length === 0) return;
  throw new JsonShapeError('malformed_json', `${where} has none of ${expected}, only ${someKeys(o)}`);
}

/** The keys a resource entry and a scope entry may have (both spellings). */
function resourceKeys(sig: JsonSignal): string[] {
  return ['resource', ...sig.scopes, 'schemaUrl', 'schema_url'];
}
function scopeKeys(sig: JsonSignal): string[] {
  return ['scope', ...sig.records, 'schemaUrl', 'schema_url'];
}

/** The records list of one scope entry, after refusing the pre-1.0 spellings a scope entry could carry. */
function jsonScopeEntry<R>(sig: JsonSignal, sl: unknown, where: string, record: (v: unknown) => R): { scope: InstrumentationScope; schemaUrl: string; records: R[] } {
  if (!isObject(sl)) throw new JsonShapeError('malformed_json', `${where} is not an object`);
  const lib = presentName(sl, ['instrumentationLibrary', 'instrumentation_library']);
  if (lib !== undefined && holdsSomething(sl[lib])) {
    throw new JsonShapeError('unsupported_record', `${where}.${lib} ${PRE_1_0} send "scope" instead`);
  }
  if (sig.legacyRecords !== undefined && holdsSomething(sl[sig.legacyRecords]) && Object.prototype.hasOwnProperty.call(sl, sig.legacyRecords)) {
    throw new JsonShapeError('unsupported_record', `${where}.${sig.legacyRecords} ${PRE_1_0_RECORDS} send "${sig.records[0]}" instead`);
  }
  requireKnownKey(sl, scopeKeys(sig), where, `scope, ${sig.records[0]}, schemaUrl`);
  return {
    scope: jsonScope(sl.scope),
    schemaUrl: jsonString(sl, 'schemaUrl', 'schema_url', 'schemaUrl'),
    records: jsonList(sl, sig.records[0], sig.records[1], `${where}.${sig.records[0]}`).map(record),
  };
}

interface JsonResourceEntry<R> {
  resource: Resource;
  schemaUrl: string;
  scopes: Array<{ scope: InstrumentationScope; schemaUrl: string; records: R[] }>;
}

/**
 * The walk above the records, shared by logs and traces. Whole-body problems are thrown as JsonShapeError (a
 * resource or scope of the wrong shape makes the body unreadable as a whole: its records cannot be counted);
 * problems inside one record are kept on that record by `record`.
 */
function jsonRequest<R>(sig: JsonSignal, body: Json, record: (v: unknown) => R): JsonResourceEntry<R>[] {
  const top = presentName(body, sig.resources);
  if (top === undefined) {
    const other = sig === LOGS_JSON ? TRACES_JSON : LOGS_JSON;
    const otherName = presentName(body, other.resources);
    if (otherName !== undefined) {
      throw new JsonShapeError(
        'unsupported_record',
        `body holds "${otherName}": an OTLP ${other.request}, not an ${sig.request}; send it to ${other.endpoint}`,
      );
    }
    for (const [key, signal] of OTHER_SIGNALS) {
      if (body[key] !== undefined && Object.prototype.hasOwnProperty.call(body, key)) {
        throw new JsonShapeError('unsupported_record', `body holds "${key}": OTLP ${signal}, which meshlens does not take; send ${sig.resources[0]}`);
      }
    }
    requireKnownKey(body, sig.resources, `body`, `"${sig.resources[0]}"`);
    return [];
  }
  return jsonList(body, top, top, top).map((rl, i) => {
    const where = `${top}[${i}]`;
    if (!isObject(rl)) throw new JsonShapeError('malformed_json', `${where} is not an object`);
    const legacy = presentName(rl, sig.legacyScopes);
    if (legacy !== undefined && holdsSomething(rl[legacy])) {
      throw new JsonShapeError('unsupported_record', `${where}.${legacy} ${PRE_1_0} send "${sig.scopes[0]}" with "${sig.records[0]}" (upgrade the exporter or collector)`);
    }
    requireKnownKey(rl, resourceKeys(sig), where, `resource, ${sig.scopes[0]}, schemaUrl`);
    const scopesName = presentName(rl, sig.scopes) ?? sig.scopes[0];
    return {
      resource: jsonResource(rl.resource),
      schemaUrl: jsonString(rl, 'schemaUrl', 'schema_url', 'schemaUrl'),
      scopes: jsonList(rl, scopesName, scopesName, `${where}.${scopesName}`).map((sl, j) => jsonScopeEntry(sig, sl, `${where}.${scopesName}[${j}]`, record)),
    };
  });
}

/**
 * Runs the structural walk: its JsonShapeErrors keep their reason, anything else (a RangeError from a
 * pathological value) is malformed_json.
 */
function structural<T>(what: string, walk: () => T): Result<T> {
  try {
    return ok(walk());
  } catch (err) {
    if (err instanceof JsonShapeError) return reject(err.reason, `not a readable OTLP/JSON ${what}: ${err.message}`);
    return reject('malformed_json', `not an OTLP/JSON ${what}: ${describe(err)}`);
  }
}

/**
 * `ExportLogsServiceRequest` from OTLP/JSON. The pre-1.0 names (`instrumentationLibraryLogs`, `logs`,
 * `instrumentationLibrary`) are refused `unsupported_record`, and a body of another shape `malformed_json`,
 * rather than read as an empty export (issue 9).
 */
export function decodeExportLogsRequestJson(buf: Buffer | Uint8Array | string): Result<ExportLogsRequest> {
  const body = parseJsonBody(buf);
  if (!body.ok) return body;
  return structural(LOGS_JSON.request, () => ({
    resourceLogs: jsonRequest(LOGS_JSON, body.value, jsonLogRecord).map((r) => ({
      resource: r.resource,
      schemaUrl: r.schemaUrl,
      scopeLogs: r.scopes.map((s) => ({ scope: s.scope, schemaUrl: s.schemaUrl, logRecords: s.records })),
    })),
  }));
}

/** `ExportTraceServiceRequest` from OTLP/JSON, with the same refusals (`instrumentationLibrarySpans`). */
export function decodeExportTraceRequestJson(buf: Buffer | Uint8Array | string): Result<ExportTraceRequest> {
  const body = parseJsonBody(buf);
  if (!body.ok) return body;
  return structural(TRACES_JSON.request, () => ({
    resourceSpans: jsonRequest(TRACES_JSON, body.value, jsonSpan).map((r) => ({
      resource: r.resource,
      schemaUrl: r.schemaUrl,
      scopeSpans: r.scopes.map((s) => ({ scope: s.scope, schemaUrl: s.schemaUrl, spans: s.records })),
    })),
  }));
}

// ---------------------------------------------------------------------------------------------------------
// Helpers for the parsers: AnyValue to strings and JS values, records back to OTLP/JSON (dead letters)
// ---------------------------------------------------------------------------------------------------------

/** A JS value for an AnyValue: ints within ±2^53 as numbers, larger ones as decimal strings. */
export function anyValueToJs(v: AnyValue): unknown {
  switch (v.kind) {
    case 'empty':
      return null;
    case 'string':
    case 'bool':
    case 'double':
      return v.value;
    case 'int':
      return v.value >= BigInt(Number.MIN_SAFE_INTEGER) && v.value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v.value) : v.value.toString();
    case 'bytes':
      return Buffer.from(v.value).toString('base64');
    case 'array':
      return v.values.map(anyValueToJs);
    case 'kvlist': {
      const o: Record<string, unknown> = {};
      for (const kv of v.values) {
        if (kv.key === '__proto__') Object.defineProperty(o, kv.key, { value: anyValueToJs(kv.value), enumerable: true, writable: true, configurable: true });
        else o[kv.key] = anyValueToJs(kv.value);
      }
      return o;
    }
  }
}

/** An attribute value as the string meshlens keeps in `attributes` (arrays and maps as JSON). */
export function anyValueToString(v: AnyValue): string {
  switch (v.kind) {
    case 'empty':
      return '';
    case 'string':
      return v.value;
    case 'bool':
    case 'double':
      return String(v.value);
    case 'int':
      return v.value.toString();
    case 'bytes':
      return Buffer.from(v.value).toString('base64');
    case 'array':
    case 'kvlist':
      return JSON.stringify(anyValueToJs(v));
  }
}

/** Attributes as a string map (the last value wins for a duplicated key, which the spec forbids anyway). */
export function keyValuesToRecord(list: readonly KeyValue[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) setOwn(out, kv.key, anyValueToString(kv.value));
  return out;
}

/** `o[key] = value`, except that `__proto__` becomes an own key instead of hitting Object.prototype's setter. */
export function setOwn(o: Record<string, string>, key: string, value: string): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

/** An AnyValue in OTLP/JSON form. */
export function anyValueToOtlpJson(v: AnyValue): Json {
  switch (v.kind) {
    case 'empty':
      return {};
    case 'string':
      return { stringValue: v.value };
    case 'bool':
      return { boolValue: v.value };
    case 'int':
      return { intValue: v.value.toString() };
    case 'double':
      return { doubleValue: Number.isFinite(v.value) ? v.value : String(v.value) };
    case 'bytes':
      return { bytesValue: Buffer.from(v.value).toString('base64') };
    case 'array':
      return { arrayValue: { values: v.values.map(anyValueToOtlpJson) } };
    case 'kvlist':
      return { kvlistValue: { values: keyValuesToOtlpJson(v.values) } };
  }
}

function keyValuesToOtlpJson(list: readonly KeyValue[]): Json[] {
  return list.map((kv) => ({ key: kv.key, value: anyValueToOtlpJson(kv.value) }));
}


/**
 * One log record back in OTLP/JSON (the dead-letter `raw`), without the resource it came with. A JSON record
 * that could not be read is returned exactly as it was received.
 */
export function logRecordToOtlpJson(r: LogRecord): string {
  if (r.source !== undefined) return jsonForDeadLetter(r.source);
  const o: Json = {};
  if (r.timeUnixNano !== 0n) o.timeUnixNano = r.timeUnixNano.toString();
  if (r.observedTimeUnixNano !== 0n) o.observedTimeUnixNano = r.observedTimeUnixNano.toString();
  if (r.severityNumber !== 0) o.severityNumber = r.severityNumber;
  if (r.severityText) o.severityText = r.severityText;
  if (r.body.kind !== 'empty') o.body = anyValueToOtlpJson(r.body);
  if (r.attributes.length > 0) o.attributes = keyValuesToOtlpJson(r.attributes);
  if (r.flags !== 0) o.flags = r.flags;
  if (r.traceId) o.traceId = r.traceId;
  if (r.spanId) o.spanId = r.spanId;
  if (r.eventName) o.eventName = r.eventName;
  return JSON.stringify(o);
}

/** One span back in OTLP/JSON (the dead-letter `raw`). */
export function spanToOtlpJson(s: OtlpSpan): string {
  if (s.source !== undefined) return jsonForDeadLetter(s.source);
  const o: Json = {};
  if (s.traceId) o.traceId = s.traceId;
  if (s.spanId) o.spanId = s.spanId;
  if (s.parentSpanId) o.parentSpanId = s.parentSpanId;
  if (s.traceState) o.traceState = s.traceState;
  if (s.name) o.name = s.name;
  if (s.kind !== 0) o.kind = s.kind;
  if (s.startTimeUnixNano !== 0n) o.startTimeUnixNano = s.startTimeUnixNano.toString();
  if (s.endTimeUnixNano !== 0n) o.endTimeUnixNano = s.endTimeUnixNano.toString();
  if (s.attributes.length > 0) o.attributes = keyValuesToOtlpJson(s.attributes);
  if (s.status.code !== 0 || s.status.message) o.status = { code: s.status.code, message: s.status.message };
  if (s.flags !== 0) o.flags = s.flags;
  return JSON.stringify(o);
}
