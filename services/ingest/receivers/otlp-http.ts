/**
 * OTLP/HTTP receiver (CONTRACT.md §3; https://opentelemetry.io/docs/specs/otlp/#otlphttp): `POST /v1/logs`
 * and `/v1/traces`, protobuf or JSON, optionally gzip. The reply uses the request's encoding; records that
 * could not be parsed are reported in `partialSuccess` (and kept as dead letters), a body that does not
 * decode at all gets 400 with a `google.rpc.Status`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Writer } from 'protobufjs';
import { TOPICS } from '../../../lib/bus';
import type { IngestFormat, Rejection } from '../../../lib/model';
import { HttpError, wholeBody, type BodyChunks } from '../../../lib/runtime';
import type { Batch } from '../formats/batch';
import { parseOtlpLogs } from '../formats/otlp-logs';
import { parseOtlpTraces } from '../formats/otlp-traces';
import {
  encodeExportLogsResponse,
  encodeExportLogsResponseJson,
  encodeExportTraceResponse,
  encodeExportTraceResponseJson,
} from '../otlp/codec';
import { describeRejections, requestKey, type IngestPipeline, type IngestReply } from '../pipeline';
import type { ReceiverName } from '../metrics';

type Encoding = 'protobuf' | 'json';

export interface OtlpHttpDeps {
  pipeline: IngestPipeline;
  /** Auth, then admission, before the body is read. */
  onRequest: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
}

const RECEIVER: ReceiverName = 'otlp_http';
/** google.rpc.Code INVALID_ARGUMENT. */
const INVALID_ARGUMENT = 3;

function encodingOf(request: FastifyRequest): Encoding {
  const ct = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (ct === 'application/x-protobuf' || ct === 'application/protobuf') return 'protobuf';
  if (ct === 'application/json') return 'json';
  throw new HttpError(415, 'unsupported_media_type', `Content-Type ${ct || '(none)'} is not supported; send application/x-protobuf or application/json`);
}

/** `google.rpc.Status{code, message}` in the request's encoding (OTLP/HTTP failure responses). */
function statusBody(encoding: Encoding, code: number, message: string): Buffer | string {
  if (encoding === 'json') return JSON.stringify({ code, message });
  return Buffer.from(Writer.create().uint32(8).int32(code).uint32(18).string(message).finish());
}

async function handle<T>(
  deps: OtlpHttpDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  format: IngestFormat,
  parse: (body: Buffer, encoding: Encoding) => { ok: true; value: Batch<T> } | Rejection,
  publish: (batch: Batch<T>) => Promise<IngestReply>,
  encodeResponse: Record<Encoding, (rejected: number, errorMessage: string) => Buffer>,
): Promise<FastifyReply> {
  const encoding = encodingOf(request);
  const body = wholeBody(request.body as BodyChunks | undefined);
  const parsed = parse(body, encoding);
  const contentType = encoding === 'json' ? 'application/json' : 'application/x-protobuf';
  if (!parsed.ok) {
    await deps.pipeline.rejectBody(RECEIVER, format, parsed.reason, parsed.message, body);
    return reply.code(400).header('content-type', contentType).send(statusBody(encoding, INVALID_ARGUMENT, `${parsed.reason}: ${parsed.message}`));
  }
  const result = await publish(parsed.value);
  return reply.code(200).header('content-type', contentType).send(encodeResponse[encoding](result.rejected, describeRejections(result)));
}

export function registerOtlpHttpRoutes(app: FastifyInstance, deps: OtlpHttpDeps): void {
  // The content type is checked before the body is read too (encodingOf throws 415), so none is buffered for nothing.
  const onRequest = [deps.onRequest, async (request: FastifyRequest) => void encodingOf(request)];
  app.post('/v1/logs', { onRequest }, (request, reply) =>
    handle(
      deps,
      request,
      reply,
      'otlp_logs',
      parseOtlpLogs,
      (batch) => deps.pipeline.batch(RECEIVER, 'otlp_logs', batch, TOPICS.requests, requestKey),
      {
        protobuf: (rejected, errorMessage) => encodeExportLogsResponse({ rejectedLogRecords: rejected, errorMessage }),
        json: (rejected, errorMessage) => encodeExportLogsResponseJson({ rejectedLogRecords: rejected, errorMessage }),
      },
    ),
  );
  app.post('/v1/traces', { onRequest }, (request, reply) =>
    handle(
      deps,
      request,
      reply,
      'otlp_traces',
      parseOtlpTraces,
      (batch) => deps.pipeline.batch(RECEIVER, 'otlp_traces', batch, TOPICS.spans, (s) => s.traceId),
      {
        protobuf: (rejected, errorMessage) => encodeExportTraceResponse({ rejectedSpans: rejected, errorMessage }),
        json: (rejected, errorMessage) => encodeExportTraceResponseJson({ rejectedSpans: rejected, errorMessage }),
      },
    ),
  );
}
