/**
 * What a whole-body parser (OTLP logs/traces, Zipkin) returns: the records it could build and, for every
 * record it could not, a rejection. A body carries many records, and one bad record must not cost the
 * others (OTLP's `partialSuccess`, https://opentelemetry.io/docs/specs/otlp/#partial-success), so
 * rejections are per record. A body that does not decode at all is a `Rejection` of the whole `Result`.
 */
import type { RejectReason } from '../../../lib/model';

export interface RecordReject {
  /** 1-based position of the record in the request, counted across all resources and scopes. */
  index: number;
  reason: RejectReason;
  message: string;
  /** The record re-serialized as JSON, for the dead-letter topic. */
  raw: string;
}

export interface Batch<T> {
  records: T[];
  rejects: RecordReject[];
}
