/**
 * Istio's default TEXT access log, every default layout since Istio 1.0, plus plain Envoy's default.
 *
 * Layouts (shared/reference/telemetry-formats.md §1.1; format strings in istio/istio
 * pilot/pkg/networking/core/v1alpha3/listener.go `EnvoyTextLogFormat12/13` and
 * pilot/pkg/model/telemetry_logging.go):
 *
 * | layout   | tokens | Istio          | after the flags                                                   |
 * |----------|--------|----------------|-------------------------------------------------------------------|
 * | `envoy`  | 13     | none (Envoy)   | bytes… ending at `"%UPSTREAM_HOST%"`                              |
 * | `g1`     | 18     | 1.0–1.1        | bytes…, no mixer column                                           |
 * | `g1m`    | 19     | early 2019/1.1 | `"%DYNAMIC_METADATA(istio.mixer:status)%"` (istio/istio#11471)    |
 * | `g2_12`  | 20     | 1.2            | mixer + `"%UPSTREAM_TRANSPORT_FAILURE_REASON%"`, no route name    |
 * | `g2_13`  | 21     | 1.3–1.8        | mixer + transport failure reason, `%ROUTE_NAME%` last             |
 * | `g3`     | 22     | 1.9+           | `%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%` (#27903) |
 *
 * The layout is told apart by token shape only (§1.2): which tokens are quoted and how many there are —
 * never by date, since old-format lines still appear in current docs. A line whose shape matches none of
 * them is a custom `accessLogFormat` and is rejected (`unknown_layout`), never forced into a layout.
 *
 * Hot path: one pass over char codes records token boundaries into module-level typed arrays (the parser
 * is synchronous, so the scratch space cannot be shared by two calls at once); fields are sliced only once
 * the layout is known. No `split`, no regex, no `Date.parse` per line.
 */
import * as model from '../../../lib/model';
import type { MeshRequest, Result } from '../../../lib/model';

// Bound once at load: CommonJS re-exports compile to property getters, and these run once per line.
const { addressPort, emptyRequest, finishRequest, normalizeFlags, ok, reject, setRequestAttribute, stripAltStatSuffix } = model;

export type TextLayout = 'envoy' | 'g1' | 'g1m' | 'g2_12' | 'g2_13' | 'g3';

// ---------------------------------------------------------------------------------------------------------
// RFC 3339 timestamps
// ---------------------------------------------------------------------------------------------------------

/** Years outside this range are not plausible for access-log event times (telemetry-formats §1.2: UTC with ms). */
const MIN_YEAR = 1970;
const MAX_YEAR = 2999;
const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`,
 * https://howardhinnant.github.io/date_algorithms.html#days_from_civil): pure integer arithmetic, no Date.
 */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

/** Two ASCII digits at `i` as a number, or -1. */
function dig2(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  if (a < 0 || a > 9 || b < 0 || b > 9) return -1;
  return a * 10 + b;
}

function dig4(s: string, i: number): number {
  const hi = dig2(s, i);
  const lo = dig2(s, i + 2);
  return hi < 0 || lo < 0 ? -1 : hi * 100 + lo;
}

/** Lines arrive in time order, so consecutive lines share their date: the last day's start is cached. */
let cachedDayKey = -1;
let cachedDayMs = 0;

/** Unix ms of 00:00 UTC on a valid date, or NaN. */
function dayStartMs(y: number, mo: number, d: number): number {
  const key = y * 10000 + mo * 100 + d;
  if (key === cachedDayKey) return cachedDayMs;
  if (y < MIN_YEAR || y > MAX_YEAR || mo < 1 || mo > 12 || d < 1) return NaN;
  const dim = mo === 2 && isLeap(y) ? 29 : DAYS_IN_MONTH[mo]!;
  if (d > dim) return NaN;
  cachedDayKey = key;
  cachedDayMs = daysFromCivil(y, mo, d) * 86400000;
  return cachedDayMs;
}

function civilToMs(y: number, mo: number, d: number, h: number, mi: number, sec: number, ms: number): number {
  // RFC 3339 §5.6 allows second 60 (a leap second); it is counted into the next minute like Date does.
  if (h > 23 || mi > 59 || sec > 60) return NaN;
  return dayStartMs(y, mo, d) + ((h * 60 + mi) * 60 + sec) * 1000 + ms;
}

/**
 * `2026-03-14T09:26:53.589Z` → Unix ms, or NaN. The fast path is Envoy's `%START_TIME%` default exactly
 * (24 chars, milliseconds, `Z`); everything else RFC 3339 allows — no or longer fractions (Hubble prints
 * nanoseconds), lowercase `t`/`z`, numeric offsets `+05:30` — goes through the general path, which is still
 * arithmetic. Fractions below a millisecond are truncated.
 */
export function parseRfc3339Millis(s: string, start = 0, end = s.length): number {
  const len = end - start;
  if (
    len === 24 &&
    s.charCodeAt(start + 4) === 45 &&
    s.charCodeAt(start + 7) === 45 &&
    s.charCodeAt(start + 10) === 84 &&
    s.charCodeAt(start + 13) === 58 &&
    s.charCodeAt(start + 16) === 58 &&
    s.charCodeAt(start + 19) === 46 &&
    s.charCodeAt(start + 23) === 90
  ) {
    const y = dig4(s, start);
    const mo = dig2(s, start + 5);
    const d = dig2(s, start + 8);
    const h = dig2(s, start + 11);
    const mi = dig2(s, start + 14);
    const sec = dig2(s, start + 17);
    const msHi = dig2(s, start + 20);
    const msLo = s.charCodeAt(start + 22) - 48;
    if ((y | mo | d | h | mi | sec | msHi) < 0 || msLo < 0 || msLo > 9) return NaN;
    return civilToMs(y, mo, d, h, mi, sec, msHi * 10 + msLo);
  }
  return parseRfc3339Slow(s, start, end);
}

function parseRfc3339Slow(s: string, start: number, end: number): number {
  if (end - start < 20) return NaN; // shortest: YYYY-MM-DDTHH:MM:SSZ
  const y = dig4(s, start);
  if (y < 0 || s.charCodeAt(start + 4) !== 45) return NaN;
  const mo = dig2(s, start + 5);
  if (mo < 0 || s.charCodeAt(start + 7) !== 45) return NaN;
  const d = dig2(s, start + 8);
  const t = s.charCodeAt(start + 10);
  if (d < 0 || (t !== 84 && t !== 116)) return NaN; // T or t
  const h = dig2(s, start + 11);
  if (h < 0 || s.charCodeAt(start + 13) !== 58) return NaN;
  const mi = dig2(s, start + 14);
  if (mi < 0 || s.charCodeAt(start + 16) !== 58) return NaN;
  const sec = dig2(s, start + 17);
  if (sec < 0) return NaN;
  let i = start + 19;
  let ms = 0;
  if (i < end && s.charCodeAt(i) === 46) {
    i++;
    const fracStart = i;
    while (i < end) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      const pos = i - fracStart;
      if (pos < 3) ms += c * (pos === 0 ? 100 : pos === 1 ? 10 : 1);
      i++;
    }
    if (i === fracStart || i - fracStart > 9) return NaN;
  }
  if (i >= end) return NaN;
  const z = s.charCodeAt(i);
  let offsetMin = 0;
  if (z === 90 || z === 122) {
    i++;
  } else if (z === 43 || z === 45) {
    const oh = dig2(s, i + 1);
    const om = dig2(s, i + 4);
    if (oh < 0 || om < 0 || s.charCodeAt(i + 3) !== 58 || oh > 23 || om > 59) return NaN;
    offsetMin = (oh * 60 + om) * (z === 43 ? 1 : -1);
    i += 6;
  } else {
    return NaN;
  }
  if (i !== end) return NaN;
  const local = civilToMs(y, mo, d, h, mi, sec, ms);
  return local - offsetMin * 60000;
}

// ---------------------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------------------

/** Result codes of `scanUint`: the value itself when >= 0. */
const UNSET = -1;
const NOT_A_NUMBER = -2;
/** 15 digits stay below Number.MAX_SAFE_INTEGER. */
const MAX_DIGITS = 15;

/** Non-negative integer in `s[start, end)`; `-` (unset, §1.3) → UNSET; anything else → NOT_A_NUMBER. */
export function scanUint(s: string, start: number, end: number): number {
  const len = end - start;
  if (len === 1 && s.charCodeAt(start) === 45) return UNSET;
  if (len === 0 || len > MAX_DIGITS) return NOT_A_NUMBER;
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return NOT_A_NUMBER;
    n = n * 10 + c;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------------------

/** More tokens than the longest default layout (22) means a custom format; stop scanning early. */
const MAX_TOKENS = 23;
const tokStart = new Int32Array(MAX_TOKENS);
const tokEnd = new Int32Array(MAX_TOKENS);

/** Bit i set = token i is quoted. Masks of the default layouts, from the format strings above. */
function maskOf(...quoted: number[]): number {
  let m = 0;
  for (const q of quoted) m |= 1 << q;
  return m;
}
const MASK_ENVOY = maskOf(1, 8, 9, 10, 11, 12);
const MASK_G1 = maskOf(1, 8, 9, 10, 11, 12);
const MASK_G1M = maskOf(1, 4, 9, 10, 11, 12, 13);
const MASK_G2 = maskOf(1, 4, 5, 10, 11, 12, 13, 14); // 1.2 (20 tokens) and 1.3–1.8 (21 tokens)
const MASK_G3 = maskOf(1, 6, 11, 12, 13, 14, 15);

/** Column indices per layout; -1 = the layout has no such column. */
interface Columns {
  layout: TextLayout;
  count: number;
  mixer: number;
  details: number;
  termination: number;
  transportFailure: number;
  bytesReceived: number;
  bytesSent: number;
  duration: number;
  upstreamServiceTime: number;
  userAgent: number;
  requestId: number;
  authority: number;
  upstreamHost: number;
  cluster: number;
  downstreamLocal: number;
  downstreamRemote: number;
  sni: number;
  route: number;
}

function columns(layout: TextLayout, count: number, mixer: number, details: number, utfr: number, bytes: number): Columns {
  // Every default layout is "…bytes_received bytes_sent duration upstream_service_time xff ua id authority
  // upstream_host [cluster upstream_local downstream_local downstream_remote sni [route]]" from `bytes` on.
  const hasCluster = count > 13;
  return {
    layout,
    count,
    mixer,
    details,
    termination: details >= 0 ? details + 1 : -1,
    transportFailure: utfr,
    bytesReceived: bytes,
    bytesSent: bytes + 1,
    duration: bytes + 2,
    upstreamServiceTime: bytes + 3,
    userAgent: bytes + 5,
    requestId: bytes + 6,
    authority: bytes + 7,
    upstreamHost: bytes + 8,
    cluster: hasCluster ? bytes + 9 : -1,
    downstreamLocal: hasCluster ? bytes + 11 : -1,
    downstreamRemote: hasCluster ? bytes + 12 : -1,
    sni: hasCluster ? bytes + 13 : -1,
    route: hasCluster && count > bytes + 14 ? bytes + 14 : -1,
  };
}

const COLS_ENVOY = columns('envoy', 13, -1, -1, -1, 4);
const COLS_G1 = columns('g1', 18, -1, -1, -1, 4);
const COLS_G1M = columns('g1m', 19, 4, -1, -1, 5);
const COLS_G2_12 = columns('g2_12', 20, 4, -1, 5, 6);
const COLS_G2_13 = columns('g2_13', 21, 4, -1, 5, 6);
const COLS_G3 = columns('g3', 22, -1, 4, 6, 7);

// ---------------------------------------------------------------------------------------------------------
// Wrappers
// ---------------------------------------------------------------------------------------------------------

const LOG_LEVELS = ['info', 'warn', 'warning', 'error', 'debug', 'trace', 'critical', 'fatal', 'none'];

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 0xfeff;
}

/** True when `s[i..]` starts with a log level word followed by whitespace or the end (case-insensitive). */
function startsWithLevel(s: string, i: number, end: number): boolean {
  for (const lvl of LOG_LEVELS) {
    const e = i + lvl.length;
    if (e > end) continue;
    let match = true;
    for (let k = 0; k < lvl.length; k++) {
      if ((s.charCodeAt(i + k) | 0x20) !== lvl.charCodeAt(k)) {
        match = false;
        break;
      }
    }
    if (match && (e === end || isSpace(s.charCodeAt(e)))) return true;
  }
  return false;
}

/** Outcome of looking at a leading RFC 3339 token: -1 none, -2 an application log line, else where the rest starts. */
const NO_PREFIX = -1;
const APP_LOG = -2;

/**
 * A line that starts with an RFC 3339 timestamp is either `kubectl logs --timestamps` output (timestamp,
 * one space, the original line) or an istio-agent / Envoy application log line, which istio-proxy writes
 * as `2026-03-14T09:26:53.589412Z\tinfo\t…` (tab-separated; copy-pasted ones have the tabs turned into
 * runs of spaces, e.g. istio/istio.io#7419). Returns where the wrapped line starts, APP_LOG, or NO_PREFIX.
 */
function timestampPrefix(s: string, i: number, end: number): number {
  const c0 = s.charCodeAt(i) - 48;
  if (c0 < 0 || c0 > 9) return NO_PREFIX;
  let j = i;
  const limit = Math.min(end, i + 40);
  while (j < limit && s.charCodeAt(j) !== 32 && s.charCodeAt(j) !== 9) j++;
  if (j >= end || j === limit) return NO_PREFIX;
  if (Number.isNaN(parseRfc3339Millis(s, i, j))) return NO_PREFIX;
  if (s.charCodeAt(j) === 9) return APP_LOG;
  let k = j;
  while (k < end && (s.charCodeAt(k) === 32 || s.charCodeAt(k) === 9)) k++;
  if (k >= end) return APP_LOG;
  if (startsWithLevel(s, k, end)) return APP_LOG;
  return k;
}

/**
 * Where the line behind a leading `kubectl logs --timestamps` timestamp starts, or -1 when the line does not
 * start with one (or is an application log line). Lets the dispatcher see JSON lines behind the prefix.
 */
export function afterTimestampPrefix(line: string): number {
  let i = 0;
  while (i < line.length && isSpace(line.charCodeAt(i))) i++;
  const p = timestampPrefix(line, i, line.length);
  return p >= 0 ? p : -1;
}

/**
 * Log-viewer tags in front of the line (telemetry-formats §1.2): `kubectl logs --prefix` writes
 * `[pod/<pod>/<container>] `, stern and `docker compose logs` write one or two plain words (`<pod>
 * <container> `). Returns where the bracketed access log starts, or NO_PREFIX.
 */
function viewerTagPrefix(s: string, i: number, end: number): number {
  if (s.startsWith('[pod/', i)) {
    const close = s.indexOf('] ', i);
    return close < 0 || close >= end ? NO_PREFIX : close + 2;
  }
  if (s.charCodeAt(i) === 91 /* [ */ || s.charCodeAt(i) === 34 /* " */) return NO_PREFIX;
  let words = 0;
  let j = i;
  const limit = Math.min(end, i + 512);
  while (j < limit) {
    const c = s.charCodeAt(j);
    if (c === 32) {
      words++;
      if (words > 3) return NO_PREFIX;
      while (j < limit && s.charCodeAt(j) === 32) j++;
      if (j < limit && s.charCodeAt(j) === 91 && j + 1 < end) {
        const d = s.charCodeAt(j + 1) - 48;
        return d >= 0 && d <= 9 ? j : NO_PREFIX;
      }
      continue;
    }
    // `|` is docker compose's separator (`envoy-1  | [2024-…`); anything else quoted or bracketed is not a tag.
    if (c === 34 || c === 91 || c === 93 || c === 9) return NO_PREFIX;
    j++;
  }
  return NO_PREFIX;
}

// ---------------------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------------------

export interface TextParse {
  /** The layout the line matched, undefined when it was rejected before a layout was decided. */
  layout: TextLayout | undefined;
  result: Result<MeshRequest>;
}

/** A token's text with `-` (or `"-"`) read as unset (§1.3). */
function field(s: string, i: number): string {
  const a = tokStart[i]!;
  const b = tokEnd[i]!;
  if (b - a === 1 && s.charCodeAt(a) === 45) return '';
  return s.slice(a, b);
}

/** Parse one line; `sink.layout` receives the detected layout (tests, metrics). */
function parseLine(line: string, sink: { layout: TextLayout | undefined } | null): Result<MeshRequest> {
  let start = 0;
  let end = line.length;
  // Trailing `\r`/`\n` (CRLF files, shippers that keep the newline) and stray trailing blanks.
  while (end > start && isSpace(line.charCodeAt(end - 1))) end--;
  while (start < end && isSpace(line.charCodeAt(start))) start++;
  if (start >= end) return reject('unknown_layout', 'empty line');

  // Wrappers: at most one kubectl timestamp and one viewer tag, in either order.
  for (let pass = 0; pass < 2; pass++) {
    const ts = timestampPrefix(line, start, end);
    if (ts === APP_LOG) {
      return reject('not_an_access_log', 'istio-agent/Envoy application log line (timestamp followed by a level)');
    }
    if (ts >= 0) {
      start = ts;
      continue;
    }
    const tag = viewerTagPrefix(line, start, end);
    if (tag >= 0) {
      start = tag;
      continue;
    }
    break;
  }

  if (line.charCodeAt(start) !== 91 /* [ */) {
    return reject('unknown_layout', 'line does not start with [%START_TIME%]');
  }

  // Envoy's own application log (`[2024-09-26 11:40:13.329][3492045][debug][rbac] …`, envoyproxy/envoy#36346):
  // brackets back to back, never an access log.
  const firstClose = line.indexOf(']', start);
  if (firstClose > 0 && firstClose + 1 < end && line.charCodeAt(firstClose + 1) === 91) {
    return reject('not_an_access_log', 'Envoy application log line ([time][thread][level]…)');
  }

  // --- tokenize ---------------------------------------------------------------------------------------
  let n = 0;
  let mask = 0;
  let i = start;
  while (i < end) {
    const c = line.charCodeAt(i);
    if (c === 32) {
      i++;
      continue;
    }
    if (n === MAX_TOKENS) return reject('unknown_layout', `more than ${MAX_TOKENS - 1} fields: a custom accessLogFormat`);
    if (c === 34) {
      // A quoted field ends at a quote followed by a space or the end: user agents may contain quotes.
      let q = line.indexOf('"', i + 1);
      while (q >= 0 && q + 1 < end && line.charCodeAt(q + 1) !== 32) q = line.indexOf('"', q + 1);
      if (q < 0 || q >= end) return reject('unknown_layout', `unterminated quoted field ${n}`);
      tokStart[n] = i + 1;
      tokEnd[n] = q;
      mask |= 1 << n;
      i = q + 1;
    } else {
      // indexOf is a native (vectorized) scan: faster than a charCodeAt loop over long unquoted fields.
      let sp = line.indexOf(' ', i);
      if (sp < 0 || sp > end) sp = end;
      tokStart[n] = i;
      tokEnd[n] = sp;
      i = sp;
    }
    n++;
  }

  if (line.charCodeAt(tokEnd[0]! - 1) !== 93 /* ] */) {
    return reject('unknown_layout', 'first field is not a bracketed [%START_TIME%]');
  }

  // --- layout (telemetry-formats §1.2: by token shape) -------------------------------------------------
  let cols: Columns | undefined;
  if ((mask & 2) === 0) {
    return reject('unknown_layout', 'second field is not the quoted request line');
  } else if (n === 13 && mask === MASK_ENVOY) {
    if (isUintToken(line, 4) && isUintToken(line, 5) && isUintToken(line, 6)) cols = COLS_ENVOY;
  } else if (mask & (1 << 4)) {
    // Token 4 quoted: the mixer status. 19 tokens = early-2019 G1 + mixer, 20 = 1.2, 21 = 1.3–1.8.
    if (n === 19 && mask === MASK_G1M) cols = COLS_G1M;
    else if (n === 20 && mask === MASK_G2) cols = COLS_G2_12;
    else if (n === 21 && mask === MASK_G2) cols = COLS_G2_13;
  } else if (mask & (1 << 6)) {
    // Token 4 unquoted, token 6 quoted (`"%UPSTREAM_TRANSPORT_FAILURE_REASON%"`): 1.9+.
    if (n === 22 && mask === MASK_G3) cols = COLS_G3;
  } else if (n === 18 && mask === MASK_G1) {
    if (isUintToken(line, 4) && isUintToken(line, 5) && isUintToken(line, 6)) cols = COLS_G1;
  }
  if (!cols) {
    return reject('unknown_layout', `${n} fields with quoting ${quotingPattern(mask, n)} match no default Istio/Envoy layout`);
  }
  if (sink) sink.layout = cols.layout;

  // --- fields -----------------------------------------------------------------------------------------
  const startTimeMs = parseRfc3339Millis(line, tokStart[0]! + 1, tokEnd[0]! - 1);
  if (Number.isNaN(startTimeMs)) {
    return reject('invalid_timestamp', `bad %START_TIME% ${JSON.stringify(line.slice(tokStart[0]!, tokEnd[0]!))}`);
  }

  const code = scanUint(line, tokStart[2]!, tokEnd[2]!);
  if (code === NOT_A_NUMBER || code > 999) return badNumber(line, 2, 'response code');
  const bytesReceived = scanUint(line, tokStart[cols.bytesReceived]!, tokEnd[cols.bytesReceived]!);
  if (bytesReceived === NOT_A_NUMBER) return badNumber(line, cols.bytesReceived, 'bytes received');
  const bytesSent = scanUint(line, tokStart[cols.bytesSent]!, tokEnd[cols.bytesSent]!);
  if (bytesSent === NOT_A_NUMBER) return badNumber(line, cols.bytesSent, 'bytes sent');
  const duration = scanUint(line, tokStart[cols.duration]!, tokEnd[cols.duration]!);
  if (duration === NOT_A_NUMBER) return badNumber(line, cols.duration, 'duration');
  const ust = scanUint(line, tokStart[cols.upstreamServiceTime]!, tokEnd[cols.upstreamServiceTime]!);
  if (ust === NOT_A_NUMBER) return badNumber(line, cols.upstreamServiceTime, 'upstream service time');

  const r = emptyRequest();
  r.startTimeMs = startTimeMs;
  r.responseCode = code < 0 ? 0 : code;
  r.bytesReceived = bytesReceived < 0 ? 0 : bytesReceived;
  r.bytesSent = bytesSent < 0 ? 0 : bytesSent;
  r.durationMs = duration < 0 ? 0 : duration;
  r.upstreamServiceTimeMs = ust; // UNSET (-1) is the model's "absent"

  if (!requestLine(line, r)) {
    return reject('unknown_layout', 'request field is not "METHOD PATH PROTOCOL"');
  }
  r.responseFlags = normalizeFlags(field(line, 3));
  if (cols.details >= 0) {
    r.responseCodeDetails = field(line, cols.details);
    r.connectionTerminationDetails = field(line, cols.termination);
  }
  if (cols.transportFailure >= 0) r.upstreamTransportFailureReason = field(line, cols.transportFailure);
  if (cols.mixer >= 0) {
    // The Mixer policy status (1.1–1.8; `"-"` after Mixer's removal) explains old UAEX rejections (§4).
    const mixer = field(line, cols.mixer);
    if (mixer.length > 0) setRequestAttribute(r, 'istio_policy_status', mixer);
  }
  r.userAgent = field(line, cols.userAgent);
  r.requestId = field(line, cols.requestId);
  r.authority = field(line, cols.authority);
  r.destinationAddress = field(line, cols.upstreamHost);
  let downstreamLocalPort = 0;
  if (cols.cluster >= 0) {
    r.upstreamCluster = stripAltStatSuffix(field(line, cols.cluster));
    r.sourceAddress = field(line, cols.downstreamRemote);
    r.requestedServerName = field(line, cols.sni);
    if (cols.route >= 0) r.routeName = field(line, cols.route);
    // Read in place (no slice): only Passthrough/BlackHole destinations use it (finishRequest).
    downstreamLocalPort = addressPort(line, tokStart[cols.downstreamLocal]!, tokEnd[cols.downstreamLocal]!);
  }
  return ok(finishRequest(r, downstreamLocalPort));
}

function isUintToken(line: string, i: number): boolean {
  return scanUint(line, tokStart[i]!, tokEnd[i]!) >= 0;
}

function badNumber(line: string, i: number, what: string): Result<MeshRequest> {
  const text = line.slice(tokStart[i]!, Math.min(tokEnd[i]!, tokStart[i]! + 40));
  return reject('invalid_number', `${what} is not a non-negative integer: ${JSON.stringify(text)}`);
}

function quotingPattern(mask: number, n: number): string {
  let p = '';
  for (let i = 0; i < n; i++) p += mask & (1 << i) ? 'q' : '-';
  return p;
}

/**
 * `"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"`, token 1. `"- - -"` is a TCP connection;
 * `"- - HTTP/1.1"` a request whose codec failed before the method was read (DPE). The path is everything
 * between the first and the last space, so a path with a raw space still parses.
 */
function requestLine(line: string, r: MeshRequest): boolean {
  const a = tokStart[1]!;
  const b = tokEnd[1]!;
  const sp1 = line.indexOf(' ', a);
  if (sp1 < 0 || sp1 >= b) return false;
  const sp2 = line.lastIndexOf(' ', b - 1);
  if (sp2 <= sp1) return false;
  const method = unset(line, a, sp1);
  const path = unset(line, sp1 + 1, sp2);
  const proto = unset(line, sp2 + 1, b);
  if (method === '' && path === '' && proto === '') {
    r.protocol = 'tcp';
    return true;
  }
  // gRPC is HTTP/2 POST to /pkg.Service/Method, but nothing in the default format proves it (§1.3), so
  // the protocol stays `http` rather than a guess.
  r.protocol = 'http';
  r.method = method;
  r.path = path;
  r.httpVersion = proto;
  return true;
}

function unset(s: string, a: number, b: number): string {
  if (b - a === 1 && s.charCodeAt(a) === 45) return '';
  return s.slice(a, b);
}

/** Parse one TEXT access-log line (any default layout) into a MeshRequest. Never throws. */
export function parseIstioText(line: string): Result<MeshRequest> {
  return parseLine(line, null);
}

/** As `parseIstioText`, also reporting which layout matched (tests, diagnostics). */
export function parseIstioTextWithLayout(line: string): TextParse {
  const sink: { layout: TextLayout | undefined } = { layout: undefined };
  const result = parseLine(line, sink);
  return { layout: sink.layout, result };
}
