import { Counter, type Registry } from 'prom-client';

export type ReceiverName = 'accesslog' | 'flows' | 'otlp_http' | 'otlp_grpc' | 'zipkin';

/** Ingest counters (CONTRACT.md §5). Incremented once per request per label set, never once per record. */
export interface IngestMetrics {
  /** `meshlens_ingest_records_total{receiver, format, outcome}`. */
  records: Counter<'receiver' | 'format' | 'outcome'>;
  /** `meshlens_ingest_rejected_records_total{receiver, format, reason}`: the reasons behind outcome="rejected". */
  rejected: Counter<'receiver' | 'format' | 'reason'>;
  /** `meshlens_ingest_retry_responses_total{receiver}`: requests answered 429/503 (UNAVAILABLE): nothing taken, retry. */
  retries: Counter<'receiver'>;
  /**
   * `meshlens_ingest_requests_total{receiver, code}`: every request by its answer (HTTP status, or the gRPC status
   * name), so refusals of a whole request — 401, 413, 415, an undecodable body — are counted too, not only records.
   */
  requests: Counter<'receiver' | 'code'>;
}

export function createIngestMetrics(registry: Registry): IngestMetrics {
  return {
    records: new Counter({
      name: 'meshlens_ingest_records_total',
      help: 'Records received, by receiver, format and outcome (accepted or rejected).',
      labelNames: ['receiver', 'format', 'outcome'],
      registers: [registry],
    }),
    rejected: new Counter({
      name: 'meshlens_ingest_rejected_records_total',
      help: 'Rejected records by reason; each is kept on the dead-letter topic with its raw bytes.',
      labelNames: ['receiver', 'format', 'reason'],
      registers: [registry],
    }),
    retries: new Counter({
      name: 'meshlens_ingest_retry_responses_total',
      help: 'Requests answered 429/503 with Retry-After (gRPC UNAVAILABLE): the pipeline was full, unavailable or stopping; nothing was taken.',
      labelNames: ['receiver'],
      registers: [registry],
    }),
    requests: new Counter({
      name: 'meshlens_ingest_requests_total',
      help: 'Requests per receiver by their answer: the HTTP status code, or the gRPC status name.',
      labelNames: ['receiver', 'code'],
      registers: [registry],
    }),
  };
}
