/** Small value checks every JSON-shaped format shares. */

export type JsonObject = Record<string, unknown>;

/** A JSON object: not null, not an array. */
export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Char code of the first character that is not white space or a BOM, -1 for a blank string. */
export function firstNonSpace(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13 && c !== 0xfeff) return c;
  }
  return -1;
}

/**
 * Whether the UTF-8 JSON text of a decoded value, as JSON.stringify writes it, is longer than `limit` bytes, without
 * writing it in the common case: a walk adds up a bound no such text can exceed (every character of a string or key
 * as a 6-byte `\uXXXX` escape, every other scalar in 25 bytes), and only a value whose bound passes the limit is
 * written out and measured. Access-log records are a few hundred characters, so their bound stays far below the
 * line limit. A value nested too deeply to write is over any limit.
 */
export function jsonBytesOver(value: unknown, limit: number): boolean {
  if (jsonBytesBound(value, limit) <= limit) return false;
  try {
    const text = JSON.stringify(value);
    return text !== undefined && Buffer.byteLength(text, 'utf8') > limit;
  } catch {
    return true;
  }
}

/** The bound of jsonBytesOver, summed until it passes `limit`. Iterative: JSON.parse builds values deeper than a stack. */
function jsonBytesBound(value: unknown, limit: number): number {
  if (typeof value !== 'object' || value === null) return typeof value === 'string' ? 6 * value.length + 2 : 25;
  let total = 0;
  const pending: object[] = [value];
  while (pending.length > 0) {
    const o = pending.pop() as Record<string, unknown>;
    total += 2; // brackets
    const isArray = Array.isArray(o);
    // for…in: no key array per object; inherited enumerable keys (none on JSON.parse output) only raise the bound.
    for (const k in o) {
      const v = o[k];
      total += isArray ? 1 : 6 * k.length + 4; // a comma, or a quoted key, a colon and a comma
      if (typeof v === 'string') total += 6 * v.length + 2;
      else if (typeof v === 'object' && v !== null) pending.push(v);
      else total += 25;
    }
    if (total > limit) return total;
  }
  return total;
}

/** Depth past which `jsonForDeadLetter` cuts a value it could not write whole. */
export const MAX_DEAD_LETTER_JSON_DEPTH = 64;

/**
 * JSON text of a parsed JSON value, for a dead letter's raw bytes. JSON.parse builds values nested thousands of
 * levels deep without recursing, but JSON.stringify recurses and throws on them; the value is then written again
 * with everything deeper than MAX_DEAD_LETTER_JSON_DEPTH replaced by a marker string, so the dead letter stays
 * JSON and keeps the record's other fields (it used to become the useless `[object Object]`). Never throws.
 */
export function jsonForDeadLetter(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return boundedJson(v, 0);
  }
}

function boundedJson(v: unknown, depth: number): string {
  if (typeof v !== 'object' || v === null) {
    try {
      return JSON.stringify(v) ?? 'null';
    } catch {
      return JSON.stringify(String(v));
    }
  }
  if (depth >= MAX_DEAD_LETTER_JSON_DEPTH) return JSON.stringify(`(nested deeper than ${MAX_DEAD_LETTER_JSON_DEPTH} levels: cut by meshlens)`);
  if (Array.isArray(v)) return '[' + v.map((x) => boundedJson(x, depth + 1)).join(',') + ']';
  const parts: string[] = [];
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k];
    if (x !== undefined) parts.push(JSON.stringify(k) + ':' + boundedJson(x, depth + 1));
  }
  return '{' + parts.join(',') + '}';
}
