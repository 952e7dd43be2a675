/**
 * The per-line dispatcher behind `POST /v1/accesslogs` (CONTRACT.md §3): one line in, one record or one
 * rejection out, plus the format label for `meshlens_ingest_records_total{format}`.
 *
 * - a line starting with `{` (after whitespace) is JSON: a shipper envelope when it carries Kubernetes
 *   metadata with a line or a merged record (Fluent Bit / Vector), else an Istio JSON access-log record;
 * - anything else is Istio/Envoy TEXT.
 *
 * The line is decoded as JSON once and handed to the object parsers, so envelopes cost one `JSON.parse`.
 */
import { reject, type IngestFormat, type MeshRequest, type Result } from '../../../lib/model';
import { isEnvelope, parseEnvelopeObject } from './envelope';
import { parseIstioJsonObject } from './istio-json';
import { afterTimestampPrefix, parseIstioText } from './istio-text';
import { firstNonSpace, jsonBytesOver, type JsonObject } from './json-values';

/**
 * Longest accepted line, in UTF-8 bytes. Envoy truncates nothing, so a longer line is a runaway query
 * string or a concatenation accident; it is rejected whole (`line_too_long`) rather than half-parsed.
 */
export const MAX_LINE_BYTES = 64 * 1024;

export interface AccessLogParse {
  format: IngestFormat;
  result: Result<MeshRequest>;
}

function utf8Length(line: string): number {
  // Each UTF-16 unit is 1–3 UTF-8 bytes: only lines near the limit need counting.
  if (line.length * 3 <= MAX_LINE_BYTES) return line.length;
  return Buffer.byteLength(line, 'utf8');
}

/** Parse one access-log line of any supported kind. Never throws. */
export function parseAccessLogLine(line: string): AccessLogParse {
  // A byte order mark opens the first line of a body some Windows tools write (firstNonSpace already skips it);
  // neither JSON.parse nor the TEXT scanner would, and the line would be refused for one invisible character.
  if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
  const first = firstNonSpace(line);
  let json = first === 123; /* { */
  if (first >= 48 && first <= 57) {
    // `kubectl logs --timestamps` in front of a JSON line: `2026-03-14T09:26:53.589412345Z {"start_time":…}`.
    const rest = afterTimestampPrefix(line);
    if (rest >= 0 && line.charCodeAt(rest) === 123) {
      line = line.slice(rest);
      json = true;
    }
  }
  if (line.length > MAX_LINE_BYTES || utf8Length(line) > MAX_LINE_BYTES) {
    return {
      format: json ? 'istio_json' : 'istio_text',
      result: reject('line_too_long', `line is over ${MAX_LINE_BYTES} bytes`),
    };
  }
  if (!json) return { format: 'istio_text', result: parseIstioText(line) };

  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    return { format: 'istio_json', result: reject('malformed_json', `not JSON: ${(e as Error).message}`) };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    // Unreachable for a line starting with `{`, kept so the function's contract does not hang on that.
    return { format: 'istio_json', result: reject('malformed_json', 'a JSON value that is not an object') };
  }
  return parseDecoded(v as JsonObject);
}

function parseDecoded(obj: JsonObject): AccessLogParse {
  if (isEnvelope(obj)) return { format: 'envelope', result: parseEnvelopeObject(obj) };
  return { format: 'istio_json', result: parseIstioJsonObject(obj) };
}

/**
 * Parse one record already decoded from JSON, an element of a JSON-array body: the answer its JSON text would get
 * as an NDJSON line, without writing that text out and parsing it again (issue 10). The line limit holds as for a
 * line, measured on the element's JSON text. Never throws.
 */
export function parseAccessLogObject(obj: JsonObject): AccessLogParse {
  if (jsonBytesOver(obj, MAX_LINE_BYTES)) {
    return { format: 'istio_json', result: reject('line_too_long', `line is over ${MAX_LINE_BYTES} bytes`) };
  }
  return parseDecoded(obj);
}
