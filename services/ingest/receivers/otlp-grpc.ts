/**
 * OTLP/gRPC receiver (CONTRACT.md §3): `opentelemetry.proto.collector.logs.v1.LogsService/Export` and
 * `...trace.v1.TraceService/Export`, as Istio's `envoyOtelAls` access-log provider and `opentelemetry`
 * tracing provider send them. Messages are taken as raw bytes and decoded in the handler, so a body that
 * does not decode gets INVALID_ARGUMENT with a reason rather than a transport-level INTERNAL.
 * Status codes follow https://opentelemetry.io/docs/specs/otlp/#failures: a full, stopping or unavailable
 * pipeline is UNAVAILABLE, which OTLP clients retry with backoff. OK is sent once the records are durable.
 */
import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { TOPICS } from '../../../lib/bus';
import type { IngestFormat, Rejection } from '../../../lib/model';
import { checkBearer, tokenDigest, type BodyBudget, type Logger } from '../../../lib/runtime';
import type { Intake } from '../intake';
import type { IngestMetrics } from '../metrics';
import type { Batch } from '../formats/batch';
import { parseOtlpLogs } from '../formats/otlp-logs';
import { parseOtlpTraces } from '../formats/otlp-traces';
import { encodeExportLogsResponse, encodeExportTraceResponse } from '../otlp/codec';
import { describeRejections, requestKey, type IngestPipeline, type IngestReply } from '../pipeline';

const identity = (b: Buffer): Buffer => b;

function unaryBytes(path: string): ServiceDefinition {
  return {
    Export: {
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
      originalName: 'export',
    },
  } as ServiceDefinition;
}

/** gRPC status names for the `code` label (`UNAVAILABLE`, not 14). */
const STATUS_NAMES: Record<number, string> = Object.fromEntries(Object.entries(status).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v, k]));

export const LOGS_SERVICE = unaryBytes('/opentelemetry.proto.collector.logs.v1.LogsService/Export');
export const TRACE_SERVICE = unaryBytes('/opentelemetry.proto.collector.trace.v1.TraceService/Export');

export interface OtlpGrpcDeps {
  pipeline: IngestPipeline;
  logger: Logger;
  ingestToken: string | undefined;
  maxBodyBytes: number;
  intake: Intake;
  /** Shared with the HTTP receivers: a message's bytes are held until its reply. */
  budget: BodyBudget;
  metrics: IngestMetrics;
}

function authorized(call: ServerUnaryCall<Buffer, Buffer>, expected: Buffer | undefined): boolean {
  if (expected === undefined) return true;
  const got = call.metadata.get('authorization')[0];
  return typeof got === 'string' && checkBearer(got, expected);
}

function handler<T extends { startTimeMs: number }>(
  deps: OtlpGrpcDeps,
  format: IngestFormat,
  parse: (body: Buffer, encoding: 'protobuf') => { ok: true; value: Batch<T> } | Rejection,
  publish: (batch: Batch<T>) => Promise<IngestReply>,
  encodeResponse: (rejected: number, errorMessage: string) => Buffer,
) {
  const expected = deps.ingestToken === undefined ? undefined : tokenDigest(deps.ingestToken);
  return (call: ServerUnaryCall<Buffer, Buffer>, send: sendUnaryData<Buffer>): void => {
    const reply: sendUnaryData<Buffer> = (err, value) => {
      deps.metrics.requests.inc({ receiver: 'otlp_grpc', code: err ? (STATUS_NAMES[err.code ?? status.UNKNOWN] ?? 'UNKNOWN') : 'OK' });
      send(err, value);
    };
    if (!authorized(call, expected)) {
      reply({ code: status.UNAUTHENTICATED, details: 'a valid authorization: Bearer token is required' });
      return;
    }
    const body = call.request;
    const refusal = deps.intake.refusal();
    if (refusal !== undefined || !deps.budget.take(body.length)) {
      deps.metrics.retries.inc({ receiver: 'otlp_grpc' });
      const why = refusal?.message ?? `meshlens holds ${deps.budget.limit} bytes of requests in flight; retry later`;
      reply({ code: status.UNAVAILABLE, details: why });
      return;
    }
    deps.intake.begin();
    // Once, whatever happens after: the bytes and the intake slot are given back exactly once.
    let answered = false;
    const callback: sendUnaryData<Buffer> = (err, value) => {
      if (answered) return;
      answered = true;
      deps.budget.give(body.length);
      deps.intake.end();
      reply(err, value);
    };
    // Parsing inside the chain: a parser bug becomes an INTERNAL answer, not a leaked slot.
    const run = Promise.resolve().then(() => {
      const parsed = parse(body, 'protobuf');
      return parsed.ok
        ? publish(parsed.value).then((r) => {
            callback(null, encodeResponse(r.rejected, describeRejections(r)));
          })
        : deps.pipeline.rejectBody('otlp_grpc', format, parsed.reason, parsed.message, body).then(() => {
            callback({ code: status.INVALID_ARGUMENT, details: `${parsed.reason}: ${parsed.message}` });
          });
    });
    run.catch((err: { retriable?: boolean; message?: string; code?: unknown }) => {
      if (err.code === 'BUS_TOO_LARGE') {
        callback({ code: status.RESOURCE_EXHAUSTED, details: `${err.message ?? ''}; send smaller batches` });
      } else if (err.retriable) {
        deps.metrics.retries.inc({ receiver: 'otlp_grpc' });
        callback({ code: status.UNAVAILABLE, details: `pipeline cannot take more, retry later: ${err.message ?? ''}` });
      } else {
        deps.logger.error({ err }, 'otlp grpc export failed');
        callback({ code: status.INTERNAL, details: 'internal error' });
      }
    });
  };
}

/** Builds the gRPC server with both services; bin/ binds it with `bindGrpc`. */
export function createOtlpGrpcServer(deps: OtlpGrpcDeps): Server {
  const server = new Server({
    'grpc.max_receive_message_length': deps.maxBodyBytes,
  });
  const logs: UntypedServiceImplementation = {
    Export: handler(
      deps,
      'otlp_logs',
      parseOtlpLogs,
      (batch) => deps.pipeline.batch('otlp_grpc', 'otlp_logs', batch, TOPICS.requests, requestKey),
      (rejected, errorMessage) => encodeExportLogsResponse({ rejectedLogRecords: rejected, errorMessage }),
    ),
  };
  const traces: UntypedServiceImplementation = {
    Export: handler(
      deps,
      'otlp_traces',
      parseOtlpTraces,
      (batch) => deps.pipeline.batch('otlp_grpc', 'otlp_traces', batch, TOPICS.spans, (s) => s.traceId),
      (rejected, errorMessage) => encodeExportTraceResponse({ rejectedSpans: rejected, errorMessage }),
    ),
  };
  server.addService(LOGS_SERVICE, logs);
  server.addService(TRACE_SERVICE, traces);
  return server;
}

/** Binds `server` on host:port (0 = ephemeral) and resolves the bound port. */
export function bindGrpc(server: Server, host: string, port: number): Promise<number> {
  const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });
}
