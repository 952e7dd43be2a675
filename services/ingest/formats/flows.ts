/**
 * The `/v1/flows` line parser (CONTRACT.md §3): one NDJSON line → which format it is and its Flow or rejection.
 * The line is parsed as JSON once and handed to the format's parser as an object.
 *
 * Detection: a `flow` object, a `verdict`, or another GetFlowsResponse key (`node_status`, `lost_events`...)
 * is Hubble; an `action` (at the top or under Goldmane's protojson `key`) is Calico.
 *
 * The `format` of a line that is not JSON, not an object, or of no known layout still has to be one of the
 * ingest formats (it labels `meshlens_ingest_records_total` and the dead letter): it is the format the raw
 * text mentions (`"action"` → calico, `"flow"`/`"verdict"` → hubble), else `hubble`, the more common flow
 * source and the one `hubble observe`/the Hubble exporter pipe here unchanged.
 */
import type { Flow, Result } from '../../../lib/model';
import { reject } from '../../../lib/model';
import { parseCalicoFlow } from './calico';
import { isObject, jsonForDeadLetter, type JsonObject } from './json-values';
import { HUBBLE_NON_FLOW_KEYS, parseHubbleFlow } from './hubble';

export type FlowFormat = 'hubble' | 'calico';

export interface FlowLineResult {
  format: FlowFormat;
  result: Result<Flow>;
}

function sniff(line: string): FlowFormat {
  if (line.includes('"flow"') || line.includes('"verdict"')) return 'hubble';
  if (line.includes('"action"')) return 'calico';
  return 'hubble';
}

function isHubble(o: JsonObject): boolean {
  if (o.flow !== undefined || o.verdict !== undefined) return true;
  for (const k of HUBBLE_NON_FLOW_KEYS) if (o[k] !== undefined) return true;
  return false;
}

function isCalico(o: JsonObject): boolean {
  return o.action !== undefined || (isObject(o.key) && o.key.action !== undefined);
}

export function parseFlowLine(line: string): FlowLineResult {
  // RFC 8259 §8.1 lets a parser ignore a byte order mark (the first line of a body a Windows tool wrote); JSON.parse does not.
  if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return { format: sniff(line), result: reject('malformed_json', `not JSON: ${(err as Error).message}`) };
  }
  if (!isObject(value)) {
    const kind = Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`;
    return { format: sniff(line), result: reject('malformed_json', `a flow record is a JSON object, not ${kind}`) };
  }
  return parseDecoded(value, line);
}

/**
 * Parse one flow record already decoded from JSON, an element of a JSON-array body: the answer its JSON text would
 * get as an NDJSON line, without writing that text out and parsing it again (issue 10). Never throws.
 */
export function parseFlowObject(obj: JsonObject): FlowLineResult {
  return parseDecoded(obj, undefined);
}

/** `line` is the record's text when there is one; a record of no known layout is then labelled by what it mentions. */
function parseDecoded(value: JsonObject, line: string | undefined): FlowLineResult {
  const format: FlowFormat | undefined = isHubble(value) ? 'hubble' : isCalico(value) ? 'calico' : undefined;
  if (format === undefined) {
    return {
      // Only for a record that is no flow at all is the text written out (a decoded element has none).
      format: sniff(line ?? jsonForDeadLetter(value)),
      result: reject('unknown_layout', 'neither a Hubble flow ("flow", "verdict") nor a Calico flow log ("action")'),
    };
  }
  try {
    return { format, result: format === 'hubble' ? parseHubbleFlow(value) : parseCalicoFlow(value) };
  } catch (err) {
    // The parsers do not throw on data; this keeps a bug in them from failing a whole request body.
    return { format, result: reject('invalid_field', `record could not be read: ${(err as Error).message}`) };
  }
}
