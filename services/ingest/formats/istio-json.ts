/**
 * Istio's JSON access-log encoding (`meshConfig.accessLogEncoding: JSON`), shared/reference/telemetry-formats.md §2.
 *
 * Key sets: 1.2's 22 keys (with `istio_policy_status`, the Mixer status), 1.3–1.8's 23 (adds `route_name`),
 * and the current 24 (`response_code_details`, `connection_termination_details`, no mixer) — istio/istio
 * release-1.3 listener.go `EnvoyJSONLogFormat12/13`, master telemetry_logging.go `EnvoyJSONLogFormatIstio`.
 * Keys arrive in any order; a record may carry any subset of them (JSON-shaped TEXT templates pick their
 * own), and unknown extra keys are kept in `attributes` as strings.
 *
 * Two value styles, both accepted (§2.2):
 * - typed (Envoy v3 `json_format`, Istio 1.9+): `response_code`, `bytes_*`, `duration` are JSON numbers,
 *   unset values are `null`; header-derived values such as `upstream_service_time` stay strings;
 * - all-strings (older `json_format`, JSON-shaped TEXT templates): every value a string, unset is `"-"`.
 */
import * as model from '../../../lib/model';
import type { MeshRequest, RejectReason, Result } from '../../../lib/model';

// Bound once at load: CommonJS re-exports compile to property getters, and these run once per line.
const { addressPort, emptyRequest, finishRequest, normalizeFlags, ok, reject, setRequestAttribute, stripAltStatSuffix } = model;
import { parseRfc3339Millis } from './istio-text';
import type { JsonObject } from './json-values';

enum K {
  StartTime,
  RouteName,
  Method,
  Path,
  Protocol,
  ResponseCode,
  ResponseFlags,
  ResponseCodeDetails,
  ConnectionTerminationDetails,
  BytesReceived,
  BytesSent,
  Duration,
  UpstreamServiceTime,
  XForwardedFor,
  UserAgent,
  RequestId,
  Authority,
  UpstreamHost,
  UpstreamCluster,
  UpstreamLocalAddress,
  DownstreamLocalAddress,
  DownstreamRemoteAddress,
  RequestedServerName,
  UpstreamTransportFailureReason,
  IstioPolicyStatus,
}

/** Key → id: one hash lookup per key instead of a chain of string compares. */
const KEYS = new Map<string, K>([
  ['start_time', K.StartTime],
  ['route_name', K.RouteName],
  ['method', K.Method],
  ['path', K.Path],
  ['protocol', K.Protocol],
  ['response_code', K.ResponseCode],
  ['response_flags', K.ResponseFlags],
  ['response_code_details', K.ResponseCodeDetails],
  ['connection_termination_details', K.ConnectionTerminationDetails],
  ['bytes_received', K.BytesReceived],
  ['bytes_sent', K.BytesSent],
  ['duration', K.Duration],
  ['upstream_service_time', K.UpstreamServiceTime],
  ['x_forwarded_for', K.XForwardedFor],
  ['user_agent', K.UserAgent],
  ['request_id', K.RequestId],
  ['authority', K.Authority],
  ['upstream_host', K.UpstreamHost],
  ['upstream_cluster', K.UpstreamCluster],
  ['upstream_local_address', K.UpstreamLocalAddress],
  ['downstream_local_address', K.DownstreamLocalAddress],
  ['downstream_remote_address', K.DownstreamRemoteAddress],
  ['requested_server_name', K.RequestedServerName],
  ['upstream_transport_failure_reason', K.UpstreamTransportFailureReason],
  ['istio_policy_status', K.IstioPolicyStatus],
]);

class Bad {
  constructor(
    readonly reason: RejectReason,
    readonly message: string,
  ) {}
}

/** A string field: `"-"`, `null` and absence are unset (''); numbers and booleans are printed. */
function str(key: string, v: unknown): string | Bad {
  if (typeof v === 'string') return v.length === 1 && v.charCodeAt(0) === 45 ? '' : v;
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return new Bad('invalid_field', `${key} is ${Array.isArray(v) ? 'an array' : 'an object'}, not a string`);
}

/** A non-negative integer field, typed (number) or all-strings (`"201"`); unset (`null`, `"-"`, `""`) → -1. */
function uint(key: string, v: unknown): number | Bad {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && v >= 0) return v;
    return new Bad('invalid_number', `${key} is not a non-negative integer: ${String(v)}`);
  }
  if (v === null || v === undefined) return -1;
  if (typeof v === 'string') {
    const len = v.length;
    if (len === 0 || (len === 1 && v.charCodeAt(0) === 45)) return -1;
    if (len <= 15) {
      let n = 0;
      let i = 0;
      for (; i < len; i++) {
        const c = v.charCodeAt(i) - 48;
        if (c < 0 || c > 9) break;
        n = n * 10 + c;
      }
      if (i === len) return n;
    }
    return new Bad('invalid_number', `${key} is not a non-negative integer: ${JSON.stringify(v.slice(0, 40))}`);
  }
  return new Bad('invalid_number', `${key} is ${typeof v}, not a number`);
}

/** Unknown extra keys are kept as strings (model: `attributes`). */
function attributeValue(v: unknown): string | Bad {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    // Only nesting deep enough to exhaust the stack gets here (JSON.parse output has no cycles or BigInts).
    return new Bad('invalid_field', 'an extra key holds a value nested too deeply to keep');
  }
}

/**
 * Build a MeshRequest from an already-parsed Istio JSON record. `ignore` names keys that are not part of
 * the record (a shipper's own keys when it merged the record into its envelope) so they are not kept as
 * attributes.
 */
export function parseIstioJsonObject(obj: JsonObject, ignore?: ReadonlySet<string>): Result<MeshRequest> {
  if (ignore === undefined) {
    const known = parseKnownKeys(obj);
    if (known !== undefined) return known;
  }
  return parseAnyKeys(obj, ignore);
}

/** `fieldText`'s answer for a value only the full walk may judge (an object or an array: a rejection). */
const NOT_TEXT = null;

/** `str` for the fast path: the same text, or NOT_TEXT where `str` would reject. Allocates nothing for strings. */
function fieldText(v: unknown): string | typeof NOT_TEXT {
  if (typeof v === 'string') return v.length === 1 && v.charCodeAt(0) === 45 ? '' : v;
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return NOT_TEXT;
}

/** `fieldCount`'s answer where `uint` would reject. */
const NOT_COUNT = -2;

/** `uint` for the fast path: the same value (-1 unset), or NOT_COUNT where `uint` would reject. */
function fieldCount(v: unknown): number {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : NOT_COUNT;
  if (v === null || v === undefined) return -1;
  if (typeof v !== 'string') return NOT_COUNT;
  const len = v.length;
  if (len === 0 || (len === 1 && v.charCodeAt(0) === 45)) return -1;
  if (len > 15) return NOT_COUNT;
  let n = 0;
  for (let i = 0; i < len; i++) {
    const c = v.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return NOT_COUNT;
    n = n * 10 + c;
  }
  return n;
}

/**
 * The common case, a record of Istio's own keys and valid values, read key by key: a record from JSON.parse
 * has one hidden class per key order, so each named read is a monomorphic load, where walking Object.keys
 * costs an array and a hash lookup per key (issue 10: 3.4 µs per line against 1.4 for JSON.parse alone).
 *
 * Returns undefined, for the walk in key order (`parseAnyKeys`) to decide, whenever the record has a key
 * this does not read (an attribute to keep) or a value that is to be rejected: the walk reports the first
 * bad key in the record's own order, and which one that is this cannot tell. So every answer given here is
 * the one the walk would give.
 */
function parseKnownKeys(obj: JsonObject): Result<MeshRequest> | undefined {
  // Every key is read; `seen` counts those present, to compare with the record's own key count at the end.
  let seen = 0;
  let v: unknown;

  const startTime = obj.start_time;
  if (startTime !== undefined) seen++;

  v = obj.response_code;
  if (v !== undefined) seen++;
  const code = fieldCount(v);
  v = obj.bytes_received;
  if (v !== undefined) seen++;
  const bytesReceived = fieldCount(v);
  v = obj.bytes_sent;
  if (v !== undefined) seen++;
  const bytesSent = fieldCount(v);
  v = obj.duration;
  if (v !== undefined) seen++;
  const duration = fieldCount(v);
  v = obj.upstream_service_time;
  if (v !== undefined) seen++;
  const upstreamServiceTime = fieldCount(v);
  if (code === NOT_COUNT || code > 999 || bytesReceived === NOT_COUNT || bytesSent === NOT_COUNT || duration === NOT_COUNT || upstreamServiceTime === NOT_COUNT) {
    return undefined;
  }

  v = obj.route_name;
  if (v !== undefined) seen++;
  const routeName = fieldText(v);
  v = obj.method;
  if (v !== undefined) seen++;
  const method = fieldText(v);
  v = obj.path;
  if (v !== undefined) seen++;
  const path = fieldText(v);
  v = obj.protocol;
  if (v !== undefined) seen++;
  const protocol = fieldText(v);
  v = obj.response_flags;
  if (v !== undefined) seen++;
  const flags = fieldText(v);
  v = obj.response_code_details;
  if (v !== undefined) seen++;
  const details = fieldText(v);
  v = obj.connection_termination_details;
  if (v !== undefined) seen++;
  const termination = fieldText(v);
  v = obj.x_forwarded_for;
  if (v !== undefined) seen++;
  const xff = fieldText(v); // known, not modelled: read to judge it as the walk would
  v = obj.user_agent;
  if (v !== undefined) seen++;
  const userAgent = fieldText(v);
  v = obj.request_id;
  if (v !== undefined) seen++;
  const requestId = fieldText(v);
  v = obj.authority;
  if (v !== undefined) seen++;
  const authority = fieldText(v);
  v = obj.upstream_host;
  if (v !== undefined) seen++;
  const upstreamHost = fieldText(v);
  v = obj.upstream_cluster;
  if (v !== undefined) seen++;
  const cluster = fieldText(v);
  v = obj.upstream_local_address;
  if (v !== undefined) seen++;
  const upstreamLocal = fieldText(v); // known, not modelled
  v = obj.downstream_local_address;
  if (v !== undefined) seen++;
  const downstreamLocal = fieldText(v);
  v = obj.downstream_remote_address;
  if (v !== undefined) seen++;
  const downstreamRemote = fieldText(v);
  v = obj.requested_server_name;
  if (v !== undefined) seen++;
  const sni = fieldText(v);
  v = obj.upstream_transport_failure_reason;
  if (v !== undefined) seen++;
  const transportFailure = fieldText(v);
  v = obj.istio_policy_status;
  if (v !== undefined) seen++;
  const policyStatus = fieldText(v);
  if (
    routeName === NOT_TEXT || method === NOT_TEXT || path === NOT_TEXT || protocol === NOT_TEXT || flags === NOT_TEXT ||
    details === NOT_TEXT || termination === NOT_TEXT || xff === NOT_TEXT || userAgent === NOT_TEXT || requestId === NOT_TEXT ||
    authority === NOT_TEXT || upstreamHost === NOT_TEXT || cluster === NOT_TEXT || upstreamLocal === NOT_TEXT ||
    downstreamLocal === NOT_TEXT || downstreamRemote === NOT_TEXT || sni === NOT_TEXT || transportFailure === NOT_TEXT ||
    policyStatus === NOT_TEXT
  ) {
    return undefined;
  }
  // Any other key is an attribute to keep. Counted last, when everything else is known to be fine: on the
  // shared hidden class of JSON.parse output Object.keys copies a cached key list, no lookups.
  if (Object.keys(obj).length !== seen) return undefined;

  const r = emptyRequest();
  r.responseCode = code < 0 ? 0 : code;
  r.bytesReceived = bytesReceived < 0 ? 0 : bytesReceived;
  r.bytesSent = bytesSent < 0 ? 0 : bytesSent;
  r.durationMs = duration < 0 ? 0 : duration;
  r.upstreamServiceTimeMs = upstreamServiceTime;
  r.routeName = routeName;
  r.responseFlags = normalizeFlags(flags);
  r.responseCodeDetails = details;
  r.connectionTerminationDetails = termination;
  r.userAgent = userAgent;
  r.requestId = requestId;
  r.authority = authority;
  r.destinationAddress = upstreamHost;
  r.upstreamCluster = stripAltStatSuffix(cluster);
  r.sourceAddress = downstreamRemote;
  r.requestedServerName = sni;
  r.upstreamTransportFailureReason = transportFailure;
  if (policyStatus.length > 0) setRequestAttribute(r, 'istio_policy_status', policyStatus);
  return complete(r, startTime, method, path, protocol, addressPort(downstreamLocal));
}

/** Every record, in the record's key order: unknown keys become attributes, the first bad value is the rejection. */
function parseAnyKeys(obj: JsonObject, ignore: ReadonlySet<string> | undefined): Result<MeshRequest> {
  const r = emptyRequest();
  let startTime: unknown = undefined;
  let method = '';
  let path = '';
  let protocol = '';
  let downstreamLocalPort = 0;
  const keys = Object.keys(obj);
  for (let ki = 0; ki < keys.length; ki++) {
    const key = keys[ki]!;
    const v = obj[key];
    const id = KEYS.get(key);
    if (id === undefined) {
      if (ignore !== undefined && ignore.has(key)) continue;
      const a = attributeValue(v);
      if (a instanceof Bad) return reject(a.reason, a.message);
      setRequestAttribute(r, key, a);
      continue;
    }
    let n: number | Bad = 0;
    let s: string | Bad = '';
    switch (id) {
      case K.StartTime:
        startTime = v;
        continue;
      case K.ResponseCode:
        n = uint(key, v);
        if (n instanceof Bad) return reject(n.reason, n.message);
        if (n > 999) return reject('invalid_number', `response_code out of range: ${n}`);
        r.responseCode = n < 0 ? 0 : n;
        continue;
      case K.BytesReceived:
        n = uint(key, v);
        if (n instanceof Bad) return reject(n.reason, n.message);
        r.bytesReceived = n < 0 ? 0 : n;
        continue;
      case K.BytesSent:
        n = uint(key, v);
        if (n instanceof Bad) return reject(n.reason, n.message);
        r.bytesSent = n < 0 ? 0 : n;
        continue;
      case K.Duration:
        n = uint(key, v);
        if (n instanceof Bad) return reject(n.reason, n.message);
        r.durationMs = n < 0 ? 0 : n;
        continue;
      case K.UpstreamServiceTime:
        n = uint(key, v);
        if (n instanceof Bad) return reject(n.reason, n.message);
        r.upstreamServiceTimeMs = n; // -1 = absent, as in the model
        continue;
      case K.RouteName:
      case K.Method:
      case K.Path:
      case K.Protocol:
      case K.ResponseFlags:
      case K.ResponseCodeDetails:
      case K.ConnectionTerminationDetails:
      case K.XForwardedFor:
      case K.UserAgent:
      case K.RequestId:
      case K.Authority:
      case K.UpstreamHost:
      case K.UpstreamCluster:
      case K.UpstreamLocalAddress:
      case K.DownstreamLocalAddress:
      case K.DownstreamRemoteAddress:
      case K.RequestedServerName:
      case K.UpstreamTransportFailureReason:
      case K.IstioPolicyStatus:
        break; // the string fields, read below
    }
    s = str(key, v);
    if (s instanceof Bad) return reject(s.reason, s.message);
    switch (id) {
      case K.RouteName:
        r.routeName = s;
        break;
      case K.Method:
        method = s;
        break;
      case K.Path:
        path = s;
        break;
      case K.Protocol:
        protocol = s;
        break;
      case K.ResponseFlags:
        r.responseFlags = normalizeFlags(s);
        break;
      case K.ResponseCodeDetails:
        r.responseCodeDetails = s;
        break;
      case K.ConnectionTerminationDetails:
        r.connectionTerminationDetails = s;
        break;
      case K.UserAgent:
        r.userAgent = s;
        break;
      case K.RequestId:
        r.requestId = s;
        break;
      case K.Authority:
        r.authority = s;
        break;
      case K.UpstreamHost:
        r.destinationAddress = s;
        break;
      case K.UpstreamCluster:
        // `%UPSTREAM_CLUSTER%` printed alt_stat_name with a trailing `;` until istio/istio#54224 (#54219).
        r.upstreamCluster = stripAltStatSuffix(s);
        break;
      case K.DownstreamRemoteAddress:
        r.sourceAddress = s;
        break;
      case K.RequestedServerName:
        r.requestedServerName = s;
        break;
      case K.UpstreamTransportFailureReason:
        r.upstreamTransportFailureReason = s;
        break;
      case K.DownstreamLocalAddress:
        // Only Passthrough/BlackHole destinations use it: their cluster names carry no port (finishRequest).
        downstreamLocalPort = addressPort(s);
        break;
      case K.IstioPolicyStatus:
        // The Mixer policy status (1.2–1.8): kept when set, it explains old UAEX rejections (§4).
        if (s.length > 0) setRequestAttribute(r, key, s);
        break;
      case K.XForwardedFor:
      case K.UpstreamLocalAddress:
        // Known, not modelled.
        break;
    }
  }

  return complete(r, startTime, method, path, protocol, downstreamLocalPort);
}

/** The fields both readings finish alike: the event time, the request line, the destination and outcome. */
function complete(r: MeshRequest, startTime: unknown, method: string, path: string, protocol: string, downstreamLocalPort: number): Result<MeshRequest> {
  if (startTime === undefined || startTime === null || startTime === '' || startTime === '-') {
    return reject('missing_field', 'start_time is missing');
  }
  if (typeof startTime !== 'string') {
    return reject('invalid_timestamp', `start_time is ${typeof startTime}, not an RFC 3339 string`);
  }
  const t = parseRfc3339Millis(startTime);
  if (Number.isNaN(t)) return reject('invalid_timestamp', `bad start_time ${JSON.stringify(startTime.slice(0, 40))}`);
  r.startTimeMs = t;

  // TCP records have no method, path or protocol (`"-"`/null; typed TCP records may print protocol `"-"`).
  if (method === '' && path === '' && protocol === '') {
    r.protocol = 'tcp';
  } else {
    r.protocol = 'http';
    r.method = method;
    r.path = path;
    r.httpVersion = protocol;
  }
  return ok(finishRequest(r, downstreamLocalPort));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parse one Istio JSON access-log line. Never throws. */
export function parseIstioJson(line: string): Result<MeshRequest> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    return reject('malformed_json', `not JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(v)) {
    return reject('malformed_json', `a JSON ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v}, not an object`);
  }
  return parseIstioJsonObject(v);
}
