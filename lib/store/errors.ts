/**
 * What a ClickHouse failure means for the write path (DESIGN.md: errors carry code, retriable flag and cause):
 * retriable — the server, network or resources failed, and the same insert can succeed later, so the bus
 * redelivers it with backoff; refused for good — ClickHouse will reject these rows every time, so retrying
 * would wedge the topic forever (the "poison batch"): the writer isolates the bad rows instead.
 *
 * ClickHouse errors from @clickhouse/client and chDB carry the server's numeric `code` and its `type` name
 * (https://github.com/ClickHouse/ClickHouse/blob/master/src/Common/ErrorCodes.cpp). Anything unknown is treated
 * as retriable: holding data back and saying so (metrics, logs, 503s) beats dropping it on a guess.
 */

/**
 * Errors that depend on the rows themselves (parsing, types, ranges, sizes), so halving a batch isolates them.
 * Schema problems (unknown table or column) are not among them: every row would fail alike, and the fix is a
 * migration, not dead-lettering the data.
 */
const REFUSED_FOR_GOOD = new Set([
  'CANNOT_PARSE_TEXT', // 6
  'CANNOT_PARSE_ESCAPE_SEQUENCE', // 25
  'CANNOT_PARSE_QUOTED_STRING', // 26
  'CANNOT_PARSE_INPUT_ASSERTION_FAILED', // 27
  'CANNOT_PARSE_DATE', // 38
  'CANNOT_PARSE_DATETIME', // 41
  'TYPE_MISMATCH', // 53
  'ARGUMENT_OUT_OF_BOUND', // 69
  'CANNOT_CONVERT_TYPE', // 70
  'CANNOT_PARSE_NUMBER', // 72
  'CANNOT_PARSE_BOOL', // 467
  'INCORRECT_DATA', // 117
  'TOO_LARGE_STRING_SIZE', // 131
  'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE', // 321
  'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN', // 349
  'DECIMAL_OVERFLOW', // 407
  'CANNOT_PARSE_UUID', // 376
  'CANNOT_PARSE_IPV4', // 441
  'CANNOT_PARSE_IPV6', // 442
  'TOO_LARGE_ARRAY_SIZE', // 128
  'VIOLATED_CONSTRAINT', // 469: a CHECK an operator added to a table holds per row
]);

export interface StoreErrorInfo {
  retriable: boolean;
  /** ClickHouse's error name (`CANNOT_PARSE_NUMBER`), a Node network code (`ECONNREFUSED`), or `UNKNOWN`. */
  type: string;
  /** ClickHouse's numeric code as a string; '' for non-ClickHouse errors. */
  code: string;
}

export function classifyStoreError(err: unknown): StoreErrorInfo {
  const e = (err ?? {}) as { code?: unknown; type?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message : '';
  const code = typeof e.code === 'string' || typeof e.code === 'number' ? String(e.code) : '';
  if (typeof e.type === 'string' && e.type !== '') {
    // One code, two meanings: "too many partitions for single INSERT block" depends on the rows (halving the
    // block helps), "too many parts" means merges lag behind (waiting helps).
    if (e.type === 'TOO_MANY_PARTS') return { retriable: !/partitions for single INSERT block/i.test(message), type: e.type, code };
    return { retriable: !REFUSED_FOR_GOOD.has(e.type), type: e.type, code };
  }
  // Node's network errors (ECONNREFUSED, ECONNRESET, ETIMEDOUT...), timeouts and anything else: try again.
  return { retriable: true, type: /^E[A-Z]+$/.test(code) ? code : 'UNKNOWN', code: /^\d+$/.test(code) ? code : '' };
}

/** A failed store operation, classified; `cause` is the driver's error. */
export class StoreError extends Error {
  readonly retriable: boolean;
  readonly type: string;

  constructor(message: string, info: StoreErrorInfo, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.retriable = info.retriable;
    this.type = info.type;
  }
}
