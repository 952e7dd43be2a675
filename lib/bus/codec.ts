/**
 * The binary codec of the record topics (requests, flows, spans): issue 10, part 3, "records cross the Kafka
 * bus in a compact binary encoding, not as JSON three times". JSON repeats every field name in every record
 * and spells every number in decimal; a batch of one key's records is a table whose columns repeat a handful
 * of values (workloads, namespaces, codes, flags), so this codec writes it as one: column by column, each
 * column in the cheapest of a few exact encodings, chosen per message.
 *
 * Wire format, version 1. Every integer is an unsigned LEB128 varint unless said otherwise.
 *
 *   message   := version:u8 (= 1)  kind:u8 (1 requests, 2 flows, 3 spans)  count:varint  column*
 *                (one column per field, in the order of the schemas below; none when count = 0)
 *   number    := 0  count × float64 LE                           anything (fractions, NaN, -0, ±Infinity)
 *              | 1  exp:u8  base:signed  count × offset:varint   value = (base + offset) / 10^exp
 *              | 2  exp:u8  base:signed                          every value = base / 10^exp
 *   signed    := sign:u8 (0 or 1)  magnitude:varint              (a zigzag varint would need 54 bits at ±2^53)
 *   string    := 0  count × length:varint  enc:u8  bytes:varint  blob      lengths in UTF-16 code units
 *              | 1  size:varint  enc:u8  size × (bytes:varint  blob)  [count × index:varint, absent when size <= 1]
 *   enc       := 0 UTF-8 | 1 UTF-16LE (only when a string holds a lone surrogate, which UTF-8 cannot carry)
 *   boolean   := ceil(count / 8) bytes, value i in bit i % 8 (LSB first) of byte i / 8
 *   attributes:= count × pairs:varint, then the keys and the values as two string columns of sum(pairs) rows
 *
 * Numbers are exact: an integer column (codes, ports, -1 sentinels, byte counts up to 2^53, Unix ms) becomes
 * offsets from its minimum; a column of decimals such as Zipkin's µs-derived milliseconds (12.345) becomes
 * integers scaled by 10^exp when `round(v * 10^exp) / 10^exp === v` holds for every value, the same division
 * the decoder does; anything else stays float64. Strings are exact too: a column with few distinct values is
 * a dictionary (one string per distinct value per message), the others are one UTF-8 blob decoded by a single
 * `toString` and cut by UTF-16 lengths, so a surrogate pair split across two values still round-trips.
 *
 * The field order is part of the version: adding, removing or reordering a field of a schema needs a new
 * version byte, and `decode` must keep reading the old one for as long as old messages may sit on a topic.
 * Messages written before this codec (JSON arrays, first byte `[`) are still read, so consumers can be
 * upgraded in place; producers should be upgraded after the consumers, since an old consumer cannot read this
 * format (it dead-letters such messages with their raw bytes, so they can be replayed, not lost).
 */
import type { Flow, MeshRequest, Span } from '../model';
import type { Codec } from './types';

export const BINARY_FORMAT_VERSION = 1;
/** What every message of the JSON codec starts with: `JSON.stringify` of an array. */
const JSON_ARRAY_FIRST_BYTE = 0x5b;
/**
 * Records per message, both ways: a constant column costs no bytes per record, so without a bound a few corrupt
 * bytes could ask the decoder for billions of objects. Ingest publishes one request body's records per key,
 * far below this.
 */
export const MAX_RECORDS_PER_MESSAGE = 1 << 20;

export type CodecErrorCode = 'CODEC_UNKNOWN_VERSION' | 'CODEC_WRONG_KIND' | 'CODEC_MALFORMED' | 'CODEC_BAD_RECORD';

/** Thrown by `encode` on a value that is not a batch of records, and by `decode` on bytes it cannot read. */
export class CodecError extends Error {
  constructor(
    readonly code: CodecErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CodecError';
  }
}

// --- schemas -----------------------------------------------------------------------------------------------

type FieldKind = 'num' | 'str' | 'bool' | 'attrs';
type KindOf<V> = V extends number ? 'num' : V extends boolean ? 'bool' : V extends string ? 'str' : V extends Record<string, string> ? 'attrs' : never;
/** Every field of `T` with the kind of its type: the compiler checks that a schema misses none and mistypes none. */
type Fields<T> = { [K in keyof T]-?: KindOf<T[K]> };
/** What the decoder hands an assembler: one array per field. */
type Columns<T> = { [K in keyof T]-?: T[K] extends number ? Float64Array : T[K][] };

interface Schema<T> {
  kind: number;
  name: string;
  /** Wire order = the key order of this object. */
  fields: Fields<T>;
  /**
   * Builds the records from their columns. Written out per type, not looped over `fields`: an object literal
   * of a fixed shape is several times faster to create than one filled key by key.
   */
  assemble(c: Columns<T>, n: number): T[];
}

const REQUEST_SCHEMA: Schema<MeshRequest> = {
  kind: 1,
  name: 'requests',
  fields: {
    startTimeMs: 'num',
    reporter: 'str',
    sourceWorkload: 'str',
    sourceNamespace: 'str',
    sourceAddress: 'str',
    destinationHost: 'str',
    destinationService: 'str',
    destinationNamespace: 'str',
    destinationSubset: 'str',
    destinationPort: 'num',
    destinationWorkload: 'str',
    destinationVersion: 'str',
    destinationAddress: 'str',
    protocol: 'str',
    httpVersion: 'str',
    method: 'str',
    path: 'str',
    authority: 'str',
    responseCode: 'num',
    responseFlags: 'str',
    responseCodeDetails: 'str',
    connectionTerminationDetails: 'str',
    upstreamTransportFailureReason: 'str',
    upstreamCluster: 'str',
    requestedServerName: 'str',
    routeName: 'str',
    userAgent: 'str',
    bytesReceived: 'num',
    bytesSent: 'num',
    durationMs: 'num',
    upstreamServiceTimeMs: 'num',
    requestId: 'str',
    traceId: 'str',
    outcome: 'str',
    denyReason: 'str',
    policy: 'str',
    rule: 'num',
    attributes: 'attrs',
  },
  assemble(c, n) {
    const out = new Array<MeshRequest>(n);
    for (let i = 0; i < n; i++) {
      out[i] = {
        startTimeMs: c.startTimeMs[i]!,
        reporter: c.reporter[i]!,
        sourceWorkload: c.sourceWorkload[i]!,
        sourceNamespace: c.sourceNamespace[i]!,
        sourceAddress: c.sourceAddress[i]!,
        destinationHost: c.destinationHost[i]!,
        destinationService: c.destinationService[i]!,
        destinationNamespace: c.destinationNamespace[i]!,
        destinationSubset: c.destinationSubset[i]!,
        destinationPort: c.destinationPort[i]!,
        destinationWorkload: c.destinationWorkload[i]!,
        destinationVersion: c.destinationVersion[i]!,
        destinationAddress: c.destinationAddress[i]!,
        protocol: c.protocol[i]!,
        httpVersion: c.httpVersion[i]!,
        method: c.method[i]!,
        path: c.path[i]!,
        authority: c.authority[i]!,
        responseCode: c.responseCode[i]!,
        responseFlags: c.responseFlags[i]!,
        responseCodeDetails: c.responseCodeDetails[i]!,
        connectionTerminationDetails: c.connectionTerminationDetails[i]!,
        upstreamTransportFailureReason: c.upstreamTransportFailureReason[i]!,
        upstreamCluster: c.upstreamCluster[i]!,
        requestedServerName: c.requestedServerName[i]!,
        routeName: c.routeName[i]!,
        userAgent: c.userAgent[i]!,
        bytesReceived: c.bytesReceived[i]!,
        bytesSent: c.bytesSent[i]!,
        durationMs: c.durationMs[i]!,
        upstreamServiceTimeMs: c.upstreamServiceTimeMs[i]!,
        requestId: c.requestId[i]!,
        traceId: c.traceId[i]!,
        outcome: c.outcome[i]!,
        denyReason: c.denyReason[i]!,
        policy: c.policy[i]!,
        rule: c.rule[i]!,
        attributes: c.attributes[i]!,
      };
    }
    return out;
  },
};

const FLOW_SCHEMA: Schema<Flow> = {
  kind: 2,
  name: 'flows',
  fields: {
    startTimeMs: 'num',
    reporter: 'str',
    sourceWorkload: 'str',
    sourceNamespace: 'str',
    sourceAddress: 'str',
    destinationHost: 'str',
    destinationService: 'str',
    destinationNamespace: 'str',
    destinationWorkload: 'str',
    destinationAddress: 'str',
    destinationPort: 'num',
    transport: 'str',
    verdict: 'str',
    denyReason: 'str',
    detail: 'str',
    policy: 'str',
    rule: 'num',
    count: 'num',
    bytes: 'num',
    packets: 'num',
    attributes: 'attrs',
  },
  assemble(c, n) {
    const out = new Array<Flow>(n);
    for (let i = 0; i < n; i++) {
      out[i] = {
        startTimeMs: c.startTimeMs[i]!,
        reporter: c.reporter[i]!,
        sourceWorkload: c.sourceWorkload[i]!,
        sourceNamespace: c.sourceNamespace[i]!,
        sourceAddress: c.sourceAddress[i]!,
        destinationHost: c.destinationHost[i]!,
        destinationService: c.destinationService[i]!,
        destinationNamespace: c.destinationNamespace[i]!,
        destinationWorkload: c.destinationWorkload[i]!,
        destinationAddress: c.destinationAddress[i]!,
        destinationPort: c.destinationPort[i]!,
        transport: c.transport[i]!,
        verdict: c.verdict[i]!,
        denyReason: c.denyReason[i]!,
        detail: c.detail[i]!,
        policy: c.policy[i]!,
        rule: c.rule[i]!,
        count: c.count[i]!,
        bytes: c.bytes[i]!,
        packets: c.packets[i]!,
        attributes: c.attributes[i]!,
      };
    }
    return out;
  },
};

const SPAN_SCHEMA: Schema<Span> = {
  kind: 3,
  name: 'spans',
  fields: {
    traceId: 'str',
    spanId: 'str',
    parentSpanId: 'str',
    name: 'str',
    kind: 'str',
    startTimeMs: 'num',
    durationMs: 'num',
    serviceName: 'str',
    requestId: 'str',
    upstreamCluster: 'str',
    destinationHost: 'str',
    destinationService: 'str',
    destinationNamespace: 'str',
    destinationSubset: 'str',
    responseCode: 'num',
    responseFlags: 'str',
    error: 'bool',
    attributes: 'attrs',
  },
  assemble(c, n) {
    const out = new Array<Span>(n);
    for (let i = 0; i < n; i++) {
      out[i] = {
        traceId: c.traceId[i]!,
        spanId: c.spanId[i]!,
        parentSpanId: c.parentSpanId[i]!,
        name: c.name[i]!,
        kind: c.kind[i]!,
        startTimeMs: c.startTimeMs[i]!,
        durationMs: c.durationMs[i]!,
        serviceName: c.serviceName[i]!,
        requestId: c.requestId[i]!,
        upstreamCluster: c.upstreamCluster[i]!,
        destinationHost: c.destinationHost[i]!,
        destinationService: c.destinationService[i]!,
        destinationNamespace: c.destinationNamespace[i]!,
        destinationSubset: c.destinationSubset[i]!,
        responseCode: c.responseCode[i]!,
        responseFlags: c.responseFlags[i]!,
        error: c.error[i]!,
        attributes: c.attributes[i]!,
      };
    }
    return out;
  },
};

const SCHEMA_NAMES: Record<number, string> = { [REQUEST_SCHEMA.kind]: 'requests', [FLOW_SCHEMA.kind]: 'flows', [SPAN_SCHEMA.kind]: 'spans' };

// --- column tags ---------------------------------------------------------------------------------------------

const NUM_F64 = 0;
const NUM_SCALED = 1;
const NUM_CONST = 2;
const STR_PLAIN = 0;
const STR_DICT = 1;
const ENC_UTF8 = 0;
const ENC_UTF16 = 1;
/** Decimals kept as scaled integers: 10^6 covers nanoseconds expressed in milliseconds. */
const MAX_EXP = 6;
const POW10 = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000] as const;

// `String.prototype.isWellFormed` is in Node 20 (V8 11.3) but not in the ES2022 lib this project compiles with.
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

// --- writing -----------------------------------------------------------------------------------------------

class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(b: number): void {
    this.reserve(1);
    this.buf[this.pos++] = b;
  }

  /** `v` is a safe non-negative integer: 8 bytes hold 56 bits. */
  varint(v: number): void {
    this.reserve(8);
    const buf = this.buf;
    let pos = this.pos;
    // Bitwise operators work on 32 bits: the top of a large value is peeled off arithmetically first.
    while (v > 0x7fff_ffff) {
      buf[pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    while (v > 0x7f) {
      buf[pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[pos++] = v;
    this.pos = pos;
  }

  signed(v: number): void {
    this.u8(v < 0 ? 1 : 0);
    this.varint(Math.abs(v));
  }

  f64(v: number): void {
    this.reserve(8);
    this.pos = this.buf.writeDoubleLE(v, this.pos);
  }

  /** Writes `s` as UTF-8 or UTF-16LE; `bytes` is its encoded length, which the caller wrote beforehand. */
  text(s: string, enc: number, bytes: number): void {
    this.reserve(bytes);
    this.pos += this.buf.write(s, this.pos, bytes, enc === ENC_UTF8 ? 'utf8' : 'utf16le');
  }
}

/**
 * Scratch space reused by every `encode` (which is synchronous, so they never overlap): the output buffer, the
 * values of the column being written and the distinct values of its dictionary.
 */
let scratch = new Writer(64 * 1024);
/** A scratch buffer that grew past this for one huge message is dropped afterwards instead of kept. */
const SCRATCH_KEEP_BYTES = 4 << 20;
const SCRATCH_KEEP_STRINGS = 8192;
let numbers = new Float64Array(1024);
let indexes = new Uint32Array(1024);
const strings: string[] = [];
const attrKeys: string[] = [];
const attrValues: string[] = [];
const distinct: string[] = [];

function badRecord(schema: Schema<unknown>, field: string, i: number, value: unknown, expected: string): CodecError {
  const got = value === null ? 'null' : typeof value;
  return new CodecError('CODEC_BAD_RECORD', `cannot encode ${schema.name} record ${i}: ${field} is ${got}, expected ${expected}`);
}

function isMinusZero(v: number): boolean {
  return v === 0 && 1 / v < 0;
}

/** Whether `v` is exactly `round(v * 10^exp) / 10^exp` with a safe integer numerator (what the decoder computes). */
function fitsExp(v: number, exp: number): boolean {
  if (exp === 0) return Number.isSafeInteger(v) && !isMinusZero(v);
  const p = POW10[exp]!;
  const r = Math.round(v * p);
  return Number.isSafeInteger(r) && r / p === v && !isMinusZero(v);
}

function writeNumbers(w: Writer, records: readonly unknown[], schema: Schema<unknown>, field: string, n: number): void {
  if (numbers.length < n) numbers = new Float64Array(Math.max(n, numbers.length * 2));
  const vs = numbers;
  // The smallest power of ten that makes every value an integer, or -1 for float64.
  let exp = 0;
  for (let i = 0; i < n; i++) {
    const v = (records[i] as Record<string, unknown>)[field];
    if (typeof v !== 'number') throw badRecord(schema, field, i, v, 'a number');
    vs[i] = v;
    if (exp >= 0 && !fitsExp(v, exp)) {
      do exp++;
      while (exp <= MAX_EXP && !fitsExp(v, exp));
      if (exp > MAX_EXP) exp = -1;
    }
  }
  let min = 0;
  let max = 0;
  if (exp >= 0) {
    // Values checked at a smaller exponent are checked again at the final one: float rounding may differ.
    const p = POW10[exp]!;
    min = Infinity;
    max = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = vs[i]!;
      if (exp > 0 && !fitsExp(v, exp)) {
        exp = -1;
        break;
      }
      const r = exp === 0 ? v : Math.round(v * p);
      if (r < min) min = r;
      if (r > max) max = r;
    }
    // Offsets from the minimum must themselves be safe integers.
    if (exp >= 0 && max - min > Number.MAX_SAFE_INTEGER) exp = -1;
  }
  if (exp < 0) {
    w.u8(NUM_F64);
    w.reserve(8 * n);
    for (let i = 0; i < n; i++) w.f64(vs[i]!);
    return;
  }
  w.u8(min === max ? NUM_CONST : NUM_SCALED);
  w.u8(exp);
  w.signed(min);
  if (min === max) return;
  const p = POW10[exp]!;
  for (let i = 0; i < n; i++) {
    const v = vs[i]!;
    w.varint((exp === 0 ? v : Math.round(v * p)) - min);
  }
}

function writeStringField(w: Writer, records: readonly unknown[], schema: Schema<unknown>, field: string, n: number): void {
  const vs = strings;
  for (let i = 0; i < n; i++) {
    const v = (records[i] as Record<string, unknown>)[field];
    if (typeof v !== 'string') throw badRecord(schema, field, i, v, 'a string');
    vs[i] = v;
  }
  writeStrings(w, vs, n);
}

/** Below this many values a dictionary is found by comparing with the few distinct values, without a Map. */
const SMALL_COLUMN = 16;
/** Strings up to this long are written by a JS loop when ASCII: cheaper than a call into the native encoder. */
const SHORT_TEXT = 64;

/**
 * The distinct values of the column being written, in order of first appearance; `-1` when there are too many
 * for a dictionary to pay (more than half the values). `idx` gets each value's entry.
 */
function findDictionary(vs: readonly string[], n: number, idx: Uint32Array): number {
  const limit = Math.max(1, n >>> 1);
  const d = distinct;
  if (n < SMALL_COLUMN) {
    let size = 0;
    outer: for (let i = 0; i < n; i++) {
      const s = vs[i]!;
      for (let j = 0; j < size; j++) {
        if (d[j] === s) {
          idx[i] = j;
          continue outer;
        }
      }
      if (size === limit) return -1;
      d[size] = s;
      idx[i] = size++;
    }
    return size;
  }
  // A fresh Map per column: one module-level Map, cleared and refilled per column, made encoding slower run
  // after run (2.9 -> 7+ µs per span record over a few seconds, Node 20).
  const map = new Map<string, number>();
  // A run of equal values costs one comparison each, not a hash lookup (string hashing is most of a Map's cost).
  let prev = vs[0]!;
  let prevIdx = 0;
  map.set(prev, 0);
  d[0] = prev;
  idx[0] = 0;
  for (let i = 1; i < n; i++) {
    const s = vs[i]!;
    if (s === prev) {
      idx[i] = prevIdx;
      continue;
    }
    let j = map.get(s);
    if (j === undefined) {
      j = map.size;
      if (j === limit) return -1;
      map.set(s, j);
      d[j] = s;
    }
    idx[i] = j;
    prev = s;
    prevIdx = j;
  }
  return map.size;
}

/**
 * Writes `s` as ASCII by a JS loop, returning false (having written part of it) at the first other character:
 * the caller then rewinds and takes the native path.
 */
function writeAscii(w: Writer, s: string): boolean {
  const len = s.length;
  w.reserve(len);
  const buf = w.buf;
  let pos = w.pos;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return false;
    buf[pos++] = c;
  }
  w.pos = pos;
  return true;
}

function writeDictionary(w: Writer, n: number, size: number): void {
  const d = distinct;
  const idx = indexes;
  w.u8(STR_DICT);
  w.varint(size);
  const encAt = w.pos;
  w.u8(ENC_UTF8);
  let enc = ENC_UTF8;
  for (let j = 0; j < size; j++) {
    const s = d[j]!;
    const at = w.pos;
    if (s.length <= SHORT_TEXT) {
      w.varint(s.length);
      if (writeAscii(w, s)) continue;
      w.pos = at;
    }
    if (!isWellFormed(s)) {
      enc = ENC_UTF16;
      break;
    }
    const bytes = Buffer.byteLength(s, 'utf8');
    w.varint(bytes);
    w.text(s, ENC_UTF8, bytes);
  }
  if (enc === ENC_UTF16) {
    // A lone surrogate somewhere: the whole dictionary again, as UTF-16.
    w.pos = encAt;
    w.u8(ENC_UTF16);
    for (let j = 0; j < size; j++) {
      const s = d[j]!;
      w.varint(s.length * 2);
      w.text(s, ENC_UTF16, s.length * 2);
    }
  }
  if (size > 1) for (let i = 0; i < n; i++) w.varint(idx[i]!);
}

function writePlain(w: Writer, vs: readonly string[], n: number): void {
  w.u8(STR_PLAIN);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const len = vs[i]!.length;
    w.varint(len);
    total += len;
  }
  const blobAt = w.pos;
  if (total <= SHORT_TEXT * 4) {
    // All ASCII (the usual case): UTF-8 bytes = UTF-16 units, written by a JS loop.
    w.u8(ENC_UTF8);
    w.varint(total);
    let ascii = true;
    for (let i = 0; i < n && ascii; i++) ascii = writeAscii(w, vs[i]!);
    if (ascii) return;
    w.pos = blobAt;
  }
  // One blob for the column: one native write here and one native decode on the other side, not one per value.
  let joined = '';
  for (let i = 0; i < n; i++) joined += vs[i]!;
  // Checked on the whole blob: a pair split across two values is well-formed there and round-trips as UTF-8.
  const enc = isWellFormed(joined) ? ENC_UTF8 : ENC_UTF16;
  const bytes = enc === ENC_UTF8 ? Buffer.byteLength(joined, 'utf8') : joined.length * 2;
  w.u8(enc);
  w.varint(bytes);
  w.text(joined, enc, bytes);
}

/** A string column of the first `n` of `vs`: a dictionary when at most half the values are distinct. */
function writeStrings(w: Writer, vs: readonly string[], n: number): void {
  if (n === 0) {
    w.u8(STR_DICT);
    w.varint(0);
    w.u8(ENC_UTF8);
    return;
  }
  if (indexes.length < n) indexes = new Uint32Array(Math.max(n, indexes.length * 2));
  const size = findDictionary(vs, n, indexes);
  if (size > 0) writeDictionary(w, n, size);
  else writePlain(w, vs, n);
}

function writeBooleans(w: Writer, records: readonly unknown[], schema: Schema<unknown>, field: string, n: number): void {
  const bytes = (n + 7) >>> 3;
  w.reserve(bytes);
  const buf = w.buf;
  buf.fill(0, w.pos, w.pos + bytes);
  for (let i = 0; i < n; i++) {
    const v = (records[i] as Record<string, unknown>)[field];
    if (typeof v !== 'boolean') throw badRecord(schema, field, i, v, 'a boolean');
    if (v) buf[w.pos + (i >>> 3)]! |= 1 << (i & 7);
  }
  w.pos += bytes;
}

function writeAttributes(w: Writer, records: readonly unknown[], schema: Schema<unknown>, field: string, n: number): void {
  let pairs = 0;
  for (let i = 0; i < n; i++) {
    const a = (records[i] as Record<string, unknown>)[field];
    if (a === null || typeof a !== 'object' || Array.isArray(a)) throw badRecord(schema, field, i, a, 'an object of strings');
    let count = 0;
    // Own enumerable keys, as JSON.stringify sees them; `for...in` allocates no key array per record.
    for (const k in a) {
      if (!Object.prototype.hasOwnProperty.call(a, k)) continue;
      const v = (a as Record<string, unknown>)[k];
      if (typeof v !== 'string') throw badRecord(schema, `${field}.${k}`, i, v, 'a string');
      attrKeys[pairs] = k;
      attrValues[pairs] = v;
      pairs++;
      count++;
    }
    w.varint(count);
  }
  if (pairs > MAX_RECORDS_PER_MESSAGE) throw new CodecError('CODEC_BAD_RECORD', `cannot encode ${schema.name}: ${pairs} attributes in one message, at most ${MAX_RECORDS_PER_MESSAGE}`);
  writeStrings(w, attrKeys, pairs);
  writeStrings(w, attrValues, pairs);
}

function encodeWith<T>(schema: Schema<T>, fields: readonly (readonly [string, FieldKind])[], value: unknown): Buffer {
  if (!Array.isArray(value)) throw new CodecError('CODEC_BAD_RECORD', `cannot encode ${schema.name}: expected an array of records, got ${value === null ? 'null' : typeof value}`);
  const records = value as unknown[];
  const n = records.length;
  if (n > MAX_RECORDS_PER_MESSAGE) throw new CodecError('CODEC_BAD_RECORD', `cannot encode ${schema.name}: ${n} records in one message, at most ${MAX_RECORDS_PER_MESSAGE}`);
  for (let i = 0; i < n; i++) {
    const r = records[i];
    if (r === null || typeof r !== 'object') throw new CodecError('CODEC_BAD_RECORD', `cannot encode ${schema.name} record ${i}: expected an object, got ${r === null ? 'null' : typeof r}`);
  }
  const w = scratch;
  w.pos = 0;
  const s = schema as Schema<unknown>;
  try {
    w.u8(BINARY_FORMAT_VERSION);
    w.u8(schema.kind);
    w.varint(n);
    if (n > 0) {
      for (const [field, kind] of fields) {
        if (kind === 'num') writeNumbers(w, records, s, field, n);
        else if (kind === 'str') writeStringField(w, records, s, field, n);
        else if (kind === 'bool') writeBooleans(w, records, s, field, n);
        else writeAttributes(w, records, s, field, n);
      }
    }
    // A copy of exactly the message's size: the scratch buffer is reused by the next encode.
    const out = Buffer.allocUnsafe(w.pos);
    w.buf.copy(out, 0, 0, w.pos);
    return out;
  } finally {
    if (w.buf.length > SCRATCH_KEEP_BYTES) scratch = new Writer(64 * 1024);
    // The scratch arrays keep the last message's strings until the next encode overwrites them (emptying them
    // would make V8 shrink and regrow them every time), unless that message was a big one.
    if (strings.length > SCRATCH_KEEP_STRINGS) strings.length = 0;
    if (attrKeys.length > SCRATCH_KEEP_STRINGS) attrKeys.length = attrValues.length = 0;
    if (distinct.length > SCRATCH_KEEP_STRINGS) distinct.length = 0;
  }
}

// --- reading -----------------------------------------------------------------------------------------------

class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
  ) {
    this.pos = start;
  }

  fail(what: string): never {
    throw new CodecError('CODEC_MALFORMED', `malformed bus message at byte ${this.pos} of ${this.buf.length}: ${what}`);
  }

  u8(): number {
    if (this.pos >= this.buf.length) this.fail('truncated');
    return this.buf[this.pos++]!;
  }

  varint(): number {
    const buf = this.buf;
    const end = buf.length;
    let pos = this.pos;
    if (pos >= end) this.fail('truncated varint');
    let b = buf[pos++]!;
    if (b < 0x80) {
      this.pos = pos;
      return b;
    }
    let v = b & 0x7f;
    let scale = 128;
    for (let i = 1; ; i++) {
      if (pos >= end) this.fail('truncated varint');
      if (i === 8) this.fail('varint longer than 8 bytes');
      b = buf[pos++]!;
      v += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 128;
    }
    if (v > Number.MAX_SAFE_INTEGER) this.fail('varint above 2^53');
    this.pos = pos;
    return v;
  }

  /** A count of things still to read, bounded so that corrupt bytes cannot ask for huge allocations. */
  count(what: string): number {
    const n = this.varint();
    if (n > MAX_RECORDS_PER_MESSAGE) this.fail(`${what} ${n} above ${MAX_RECORDS_PER_MESSAGE}`);
    return n;
  }

  /** The end of `bytes` more bytes, checked against the buffer. */
  span(bytes: number): number {
    const end = this.pos + bytes;
    if (end > this.buf.length) this.fail(`${bytes} bytes announced, ${this.buf.length - this.pos} left`);
    return end;
  }
}

/** Per-decode scratch for string lengths (decode is synchronous too). */
let lengths = new Uint32Array(1024);

function readNumbers(r: Reader, n: number): Float64Array {
  const out = new Float64Array(n);
  const tag = r.u8();
  if (tag === NUM_F64) {
    const end = r.span(8 * n);
    for (let i = 0, p = r.pos; i < n; i++, p += 8) out[i] = r.buf.readDoubleLE(p);
    r.pos = end;
    return out;
  }
  if (tag !== NUM_SCALED && tag !== NUM_CONST) r.fail(`unknown number column encoding ${tag}`);
  const exp = r.u8();
  if (exp > MAX_EXP) r.fail(`decimal exponent ${exp} above ${MAX_EXP}`);
  const p = POW10[exp]!;
  const sign = r.u8();
  if (sign > 1) r.fail(`sign byte ${sign}`);
  const magnitude = r.varint();
  const base = sign === 1 ? -magnitude : magnitude;
  if (tag === NUM_CONST) {
    out.fill(exp === 0 ? base : base / p);
    return out;
  }
  for (let i = 0; i < n; i++) {
    const v = base + r.varint();
    if (!Number.isSafeInteger(v)) r.fail('number above 2^53');
    out[i] = exp === 0 ? v : v / p;
  }
  return out;
}

function readEnc(r: Reader): BufferEncoding {
  const enc = r.u8();
  if (enc === ENC_UTF8) return 'utf8';
  if (enc === ENC_UTF16) return 'utf16le';
  return r.fail(`unknown text encoding ${enc}`);
}

function readStrings(r: Reader, n: number): string[] {
  const out = new Array<string>(n);
  const tag = r.u8();
  if (tag === STR_DICT) {
    const size = r.count('dictionary size');
    if (size === 0 && n > 0) r.fail('empty dictionary');
    const enc = readEnc(r);
    // Each entry decoded on its own, not cut from a shared blob: dictionary strings become long-lived labels
    // (series, graph edges) and a substring would keep the whole message's blob alive with them.
    const dict = new Array<string>(size);
    for (let j = 0; j < size; j++) {
      const bytes = r.varint();
      const end = r.span(bytes);
      if (enc === 'utf16le' && bytes % 2 !== 0) r.fail('odd UTF-16 length');
      dict[j] = r.buf.toString(enc, r.pos, end);
      r.pos = end;
    }
    if (size === 1) {
      out.fill(dict[0]!);
      return out;
    }
    for (let i = 0; i < n; i++) {
      const j = r.varint();
      if (j >= size) r.fail(`dictionary index ${j} of ${size}`);
      out[i] = dict[j]!;
    }
    return out;
  }
  if (tag !== STR_PLAIN) r.fail(`unknown string column encoding ${tag}`);
  if (lengths.length < n) lengths = new Uint32Array(Math.max(n, lengths.length * 2));
  const lens = lengths;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const len = r.varint();
    lens[i] = len;
    total += len;
  }
  const enc = readEnc(r);
  const bytes = r.varint();
  const end = r.span(bytes);
  if (enc === 'utf16le' && bytes % 2 !== 0) r.fail('odd UTF-16 length');
  const blob = r.buf.toString(enc, r.pos, end);
  if (blob.length !== total) r.fail(`text of ${blob.length} code units, lengths add up to ${total}`);
  r.pos = end;
  for (let i = 0, at = 0; i < n; i++) {
    const len = lens[i]!;
    out[i] = blob.substring(at, at + len);
    at += len;
  }
  return out;
}

function readBooleans(r: Reader, n: number): boolean[] {
  const end = r.span((n + 7) >>> 3);
  const buf = r.buf;
  const start = r.pos;
  const out = new Array<boolean>(n);
  for (let i = 0; i < n; i++) out[i] = (buf[start + (i >>> 3)]! & (1 << (i & 7))) !== 0;
  r.pos = end;
  return out;
}

function readAttributes(r: Reader, n: number): Record<string, string>[] {
  const counts = new Uint32Array(n);
  let pairs = 0;
  for (let i = 0; i < n; i++) {
    const c = r.count('attribute count');
    counts[i] = c;
    pairs += c;
  }
  if (pairs > MAX_RECORDS_PER_MESSAGE) r.fail(`${pairs} attributes above ${MAX_RECORDS_PER_MESSAGE}`);
  const keys = readStrings(r, pairs);
  const values = readStrings(r, pairs);
  const out = new Array<Record<string, string>>(n);
  for (let i = 0, p = 0; i < n; i++) {
    const a: Record<string, string> = {};
    for (const end = p + counts[i]!; p < end; p++) {
      const k = keys[p]!;
      // JSON.parse makes `__proto__` an own key; an assignment would set the prototype instead.
      if (k === '__proto__') Object.defineProperty(a, k, { value: values[p]!, enumerable: true, writable: true, configurable: true });
      else a[k] = values[p]!;
    }
    out[i] = a;
  }
  return out;
}

function decodeBinary<T>(schema: Schema<T>, fields: readonly (readonly [string, FieldKind])[], bytes: Buffer): T[] {
  // bytes[0] (the version) was checked by the caller.
  const r = new Reader(bytes, 1);
  const kind = r.u8();
  if (kind !== schema.kind) {
    throw new CodecError('CODEC_WRONG_KIND', `a bus message of ${SCHEMA_NAMES[kind] ?? `unknown kind ${kind}`} records where ${schema.name} records belong`);
  }
  const n = r.count('record count');
  if (n === 0) {
    if (r.pos !== bytes.length) r.fail('bytes after an empty message');
    return [];
  }
  const c: Record<string, unknown> = {};
  for (const [field, k] of fields) {
    if (k === 'num') c[field] = readNumbers(r, n);
    else if (k === 'str') c[field] = readStrings(r, n);
    else if (k === 'bool') c[field] = readBooleans(r, n);
    else c[field] = readAttributes(r, n);
  }
  if (r.pos !== bytes.length) r.fail(`${bytes.length - r.pos} bytes after the last column`);
  return schema.assemble(c as Columns<T>, n);
}

function binaryCodec<T>(schema: Schema<T>): Codec<T[]> {
  const fields = Object.entries(schema.fields) as [string, FieldKind][];
  return {
    encode: (value) => encodeWith(schema, fields, value),
    decode(bytes) {
      if (bytes.length === 0) throw new CodecError('CODEC_MALFORMED', 'empty bus message');
      const version = bytes[0]!;
      if (version === BINARY_FORMAT_VERSION) return decodeBinary(schema, fields, bytes);
      if (version === JSON_ARRAY_FIRST_BYTE) {
        // Written by meshlens before the binary codec (a JSON array): read so that an upgrade in place loses nothing.
        try {
          return JSON.parse(bytes.toString('utf8')) as T[];
        } catch (err) {
          throw new CodecError('CODEC_MALFORMED', `malformed JSON bus message: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }
      }
      throw new CodecError(
        'CODEC_UNKNOWN_VERSION',
        `unknown bus message format version ${version} (0x${version.toString(16).padStart(2, '0')}); this meshlens reads version ${BINARY_FORMAT_VERSION} and JSON arrays`,
      );
    },
  };
}

export const requestsCodec: Codec<MeshRequest[]> = binaryCodec(REQUEST_SCHEMA);
export const flowsCodec: Codec<Flow[]> = binaryCodec(FLOW_SCHEMA);
export const spansCodec: Codec<Span[]> = binaryCodec(SPAN_SCHEMA);

/** The wire order of each record type's fields (pinned by a test: changing it needs a new version). */
export const FIELD_ORDER = {
  requests: Object.keys(REQUEST_SCHEMA.fields),
  flows: Object.keys(FLOW_SCHEMA.fields),
  spans: Object.keys(SPAN_SCHEMA.fields),
} as const;
