/**
 * Zipkin v2 JSON → Span, as Envoy's zipkin tracer posts it to `/api/v2/spans` (telemetry-formats.md §6;
 * https://github.com/openzipkin/zipkin-api/blob/master/zipkin2-api.yaml). The body is a JSON array of spans.
 * Istio's bootstrap asks for 128-bit trace ids, but plain Envoy and gateways such as Kourier send 64-bit ones.
 * `timestamp`/`duration` are integer microseconds and every tag value is a string. `shared`, `annotations`
 * and `remoteEndpoint` are optional and not needed here.
 *
 * Each span is judged alone: a bad one becomes a reject with its 1-based position in the array and its own
 * JSON text, and the others are kept.
 */
import { emptySpan, reject, type Result, type Span, type SpanKind } from '../../../lib/model';
import { setOwn } from '../otlp/codec';
import type { Batch } from './batch';
import { isObject, jsonForDeadLetter } from './json-values';
import { applyMeshTags, isValidId, MAX_PLAUSIBLE_MS, MIN_PLAUSIBLE_MS } from './mesh-span';

const KINDS: Readonly<Record<string, SpanKind>> = Object.freeze({
  CLIENT: 'client',
  SERVER: 'server',
  PRODUCER: 'producer',
  CONSUMER: 'consumer',
});


function quote(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return JSON.stringify(s.length > 40 ? s.slice(0, 40) + '…' : s);
}

/** Zipkin `traceId`: 16 or 32 hex digits; a 64-bit id is left-padded to the model's 32. */
function traceIdOf(v: unknown): Result<string> {
  if (v === undefined || v === null || v === '') return reject('missing_field', 'span has no traceId');
  if (typeof v !== 'string') return reject('invalid_field', `traceId ${quote(v)} is not a string`);
  // The API asks for lowercase; Zipkin's own server lowercases what it is given, so accept either case.
  const id = v.toLowerCase();
  if (isValidId(id, 32)) return { ok: true, value: id };
  if (isValidId(id, 16)) return { ok: true, value: '0000000000000000' + id };
  return reject('invalid_field', `traceId ${quote(v)} is not 16 or 32 hex digits`);
}

function spanIdOf(name: string, v: unknown, required: boolean): Result<string> {
  if (v === undefined || v === null || v === '') {
    return required ? reject('missing_field', `span has no ${name}`) : { ok: true, value: '' };
  }
  if (typeof v !== 'string') return reject('invalid_field', `${name} ${quote(v)} is not a string`);
  const id = v.toLowerCase();
  if (isValidId(id, 16)) return { ok: true, value: id };
  return reject('invalid_field', `${name} ${quote(v)} is not 16 hex digits`);
}

function microsOf(v: unknown): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : Number.NaN;
}

/**
 * Zipkin v1 JSON (`binaryAnnotations`, annotations carrying their `endpoint`) shares v2's ids and times, so a v1
 * span would pass as a v2 span with no kind, tags or service: counted, but about nothing. v2 never has either
 * (https://zipkin.io/zipkin-api/#/default/post_spans), so they mark the span as v1.
 */
function v1Marker(v: Record<string, unknown>): string | undefined {
  if (v.binaryAnnotations !== undefined) return 'binaryAnnotations';
  if (Array.isArray(v.annotations)) {
    for (const a of v.annotations) if (isObject(a) && a.endpoint !== undefined) return 'annotations with an endpoint';
  }
  return undefined;
}

function toSpan(v: unknown): Result<Span> {
  if (!isObject(v)) return reject('malformed_json', `span is ${Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v}, not an object`);
  const v1 = v1Marker(v);
  if (v1 !== undefined) {
    return reject(
      'unsupported_record',
      `a Zipkin v1 span (${v1}); meshlens reads Zipkin v2 JSON at /api/v2/spans: configure the tracer for v2 (Envoy: collector_endpoint_version HTTP_JSON)`,
    );
  }
  const traceId = traceIdOf(v.traceId);
  if (!traceId.ok) return traceId;
  const id = spanIdOf('id', v.id, true);
  if (!id.ok) return id;
  const parent = spanIdOf('parentId', v.parentId, false);
  if (!parent.ok) return parent;

  if (v.timestamp === undefined || v.timestamp === null) return reject('missing_field', 'span has no timestamp');
  const ts = microsOf(v.timestamp);
  if (Number.isNaN(ts)) return reject('invalid_timestamp', `timestamp ${quote(v.timestamp)} is not integer microseconds`);
  const startMs = ts / 1000;
  if (startMs < MIN_PLAUSIBLE_MS || startMs > MAX_PLAUSIBLE_MS) {
    return reject('invalid_timestamp', `timestamp ${ts} µs is outside 2000–2100`);
  }
  let durationMs = 0;
  if (v.duration !== undefined && v.duration !== null) {
    const d = microsOf(v.duration);
    if (Number.isNaN(d)) return reject('invalid_number', `duration ${quote(v.duration)} is not integer microseconds`);
    durationMs = d / 1000;
    // The end must be as plausible as the start: a duration of centuries is a unit or overflow bug.
    if (startMs + durationMs > MAX_PLAUSIBLE_MS) return reject('invalid_number', `duration ${d} µs ends the span after 2100`);
  }

  let kind: SpanKind = 'unspecified';
  if (v.kind !== undefined && v.kind !== null) {
    const k = typeof v.kind === 'string' ? KINDS[v.kind] : undefined;
    if (k === undefined) return reject('invalid_field', `kind ${quote(v.kind)} is not CLIENT, SERVER, PRODUCER or CONSUMER`);
    kind = k;
  }

  let serviceName = '';
  if (v.localEndpoint !== undefined && v.localEndpoint !== null) {
    if (!isObject(v.localEndpoint)) return reject('malformed_json', 'localEndpoint is not an object');
    const sn = v.localEndpoint.serviceName;
    if (typeof sn === 'string') serviceName = sn;
  }

  const tags: Record<string, string> = {};
  if (v.tags !== undefined && v.tags !== null) {
    if (!isObject(v.tags)) return reject('malformed_json', 'tags is not an object');
    for (const key in v.tags) {
      if (!Object.prototype.hasOwnProperty.call(v.tags, key)) continue;
      const t = v.tags[key];
      // The API says strings; other tracers send numbers or booleans, which print unambiguously.
      if (typeof t === 'string') setOwn(tags, key, t);
      else if (typeof t === 'number' || typeof t === 'boolean') setOwn(tags, key, String(t));
      else if (t !== null && t !== undefined) return reject('invalid_field', `tag ${quote(key)} is not a string`);
    }
  }

  const span = emptySpan();
  span.traceId = traceId.value;
  span.spanId = id.value;
  span.parentSpanId = parent.value;
  span.name = typeof v.name === 'string' ? v.name : '';
  span.kind = kind;
  span.startTimeMs = startMs;
  span.durationMs = durationMs;
  span.serviceName = serviceName;
  return { ok: true, value: applyMeshTags(span, tags, false) };
}

/**
 * Parse a Zipkin v2 body. Not JSON, or JSON that is not an array, is a `malformed_json` Rejection. An empty
 * (whitespace-only) body is an empty batch, as for the other receivers. Otherwise one record or one reject
 * per array element.
 */
export function parseZipkin(body: Buffer | string): Result<Batch<Span>> {
  let text = typeof body === 'string' ? body : body.toString('utf8');
  // RFC 8259 §8.1: a parser may ignore a leading byte order mark (Windows tools write one); JSON.parse does not.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim().length === 0) return { ok: true, value: { records: [], rejects: [] } };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return reject('malformed_json', `body is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!Array.isArray(parsed)) {
    return reject('malformed_json', `a Zipkin v2 body is a JSON array of spans, not ${parsed === null ? 'null' : typeof parsed}`);
  }
  const batch: Batch<Span> = { records: [], rejects: [] };
  for (let i = 0; i < parsed.length; i++) {
    const r = toSpan(parsed[i]);
    if (r.ok) batch.records.push(r.value);
    else batch.rejects.push({ index: i + 1, reason: r.reason, message: r.message, raw: jsonForDeadLetter(parsed[i]) });
  }
  return { ok: true, value: batch };
}
