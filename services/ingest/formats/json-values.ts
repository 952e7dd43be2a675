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
