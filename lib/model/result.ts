/**
 * Parsers return values, never throw on input (DESIGN.md "Bad input is a value", after OTel's ExportResult
 * and Loki's discard reasons). Every reason is one constant of REJECT_REASONS and a `reason` label on a counter.
 */
export const REJECT_REASONS = [
  /** A line or body that should be JSON is not, or is JSON of the wrong shape (e.g. an array where an object belongs). */
  'malformed_json',
  /** A protobuf body that does not decode as the expected OTLP message. */
  'malformed_protobuf',
  /** A text line whose token layout matches none of Istio's default formats (custom accessLogFormat, truncated line). */
  'unknown_layout',
  /** Not an access log at all: istio-agent / Envoy application log lines, shipper heartbeats. */
  'not_an_access_log',
  /** A field the record cannot exist without is absent (start time, trace id, verdict...). */
  'missing_field',
  /** A timestamp that does not parse or lies outside any plausible range. */
  'invalid_timestamp',
  /** A numeric field (code, bytes, duration, port) that is not a non-negative integer. */
  'invalid_number',
  /** A field that is present but has a value outside its vocabulary (unknown verdict, bad span id...). */
  'invalid_field',
  /** One line longer than the per-line limit; kept whole on the dead-letter topic. */
  'line_too_long',
  /** A well-formed record of a kind meshlens does not model (e.g. Hubble DNS-only events, Calico `pass` aggregates). */
  'unsupported_record',
  /** Event time older than the raw retention (MESHLENS_RAW_RETENTION_DAYS): it could never be queried. */
  'too_old',
  /** Event time further ahead of the receiver's clock than MESHLENS_MAX_CLOCK_SKEW. */
  'too_new',
  /** Accepted, then refused for good by ClickHouse when stored (isolated from its batch and dead-lettered). */
  'store_rejected',
] as const;

export type RejectReason = (typeof REJECT_REASONS)[number];

export interface Rejection {
  ok: false;
  reason: RejectReason;
  /** Human-readable detail for the caller; never used for counting. */
  message: string;
}

export type Result<T> = { ok: true; value: T } | Rejection;

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function reject(reason: RejectReason, message: string): Rejection {
  return { ok: false, reason, message };
}
