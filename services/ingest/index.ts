/**
 * The ingest target: every receiver of CONTRACT.md §3, parsing into normalized records on the bus.
 * Built without listening; bin/ binds the ports.
 */

// The target: the receivers on one HTTP app, one OTLP/HTTP app, one Zipkin app and one gRPC server.
export { createIngest } from './ingest';
export type { Ingest, IngestDeps } from './ingest';
export { bindGrpc } from './receivers/otlp-grpc';

// Intake and replies: what a sender is told, request by request, and the stop that refuses new requests.
export { MAX_REPLY_ERRORS } from './pipeline';
export type { EventTimeBounds, IngestReply, ReplyError } from './pipeline';
export type { Intake } from './intake';

// Dead letters: rejected input kept in the data directory (the all-in-one's memory bus keeps nothing).
export { startDeadLetterFileSink } from './deadletters';
export type { DeadLetterSink, DeadLetterSinkOptions } from './deadletters';

// The parsers (formats/), one per telemetry format: lines and bodies in, records or reject reasons out.
export {
  parseAccessLogLine,
  parseAccessLogObject,
  parseFlowLine,
  parseIstioJson,
  parseIstioText,
  parseOtlpLogs,
  parseZipkin,
} from './formats';
