/**
 * `POST /v1/accesslogs` and `POST /v1/flows` (CONTRACT.md §3): newline-delimited records as sidecars write
 * them and log shippers forward them. Also takes a JSON array body (Fluent Bit's `http` output with
 * `Format json`, Vector's `json` codec without newline framing), one record per element.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TOPICS, type Topic } from '../../../lib/bus';
import type { IngestFormat } from '../../../lib/model';
import { HttpError, wholeBody, type BodyChunks } from '../../../lib/runtime';
import { parseAccessLogLine, parseAccessLogObject } from '../formats/accesslog';
import { parseFlowLine, parseFlowObject } from '../formats/flows';
import { requestKey, type IngestPipeline, type IngestReply, type LineParser, type ObjectParser } from '../pipeline';
import type { ReceiverName } from '../metrics';

const LINE_TYPES = new Set(['text/plain', 'application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/x-jsonlines', 'application/json']);

export interface LineRoutesDeps {
  pipeline: IngestPipeline;
  /**
   * Runs before the body is read (auth, then admission), so unauthenticated clients cannot make us buffer a
   * body and a stopping or unavailable pipeline answers 503 at once.
   */
  gate: (receiver: ReceiverName) => (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
}

function mediaType(request: FastifyRequest): string {
  const ct = request.headers['content-type'];
  if (ct === undefined || ct === '') return 'text/plain'; // curl --data-binary without -H: treat as lines
  const semi = ct.indexOf(';');
  return (semi >= 0 ? ct.slice(0, semi) : ct).trim().toLowerCase();
}

/** Status per CONTRACT.md §3: 200 if anything was accepted or the body held no record, 400 if all were rejected. */
export function statusOf(reply: IngestReply): number {
  return reply.accepted > 0 || reply.rejected === 0 ? 200 : 400;
}

async function ingest<T extends { startTimeMs: number }>(
  deps: LineRoutesDeps,
  receiver: ReceiverName,
  /** Format label for a JSON-array body that is not JSON at all. */
  arrayFormat: IngestFormat,
  request: FastifyRequest,
  parse: LineParser<T>,
  parseObject: ObjectParser<T>,
  topic: Topic<T[]>,
  keyOf: (r: T) => string,
): Promise<IngestReply> {
  const type = mediaType(request);
  const body = (request.body as BodyChunks | undefined) ?? [];
  if (type === 'application/json' && firstNonSpace(body) === 0x5b /* [ */) {
    const whole = wholeBody(body);
    let items: unknown;
    try {
      items = JSON.parse(whole.toString('utf8'));
    } catch (err) {
      return deps.pipeline.rejectBody(receiver, arrayFormat, 'malformed_json', `body is not a JSON array: ${(err as Error).message}`, whole);
    }
    if (Array.isArray(items)) return deps.pipeline.jsonArray(receiver, items, parse, parseObject, topic, keyOf);
  }
  return deps.pipeline.lines(receiver, body, parse, topic, keyOf);
}

function firstNonSpace(body: BodyChunks): number {
  for (const chunk of body) {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return c;
    }
  }
  return -1;
}

/** Before the body is read: a type this receiver does not take is refused without buffering the body. */
async function supportedType(request: FastifyRequest): Promise<void> {
  const type = mediaType(request);
  if (!LINE_TYPES.has(type)) {
    throw new HttpError(415, 'unsupported_media_type', `Content-Type ${type} is not supported; send text/plain, application/x-ndjson or a JSON array as application/json`);
  }
}

/** Bus key of flows: one destination's records stay in order on one partition (DESIGN.md). */
function destinationHostOf(r: { destinationHost: string }): string {
  return r.destinationHost;
}

export function registerLineRoutes(app: FastifyInstance, deps: LineRoutesDeps): void {
  app.post('/v1/accesslogs', { onRequest: [deps.gate('accesslog'), supportedType] }, async (request, reply) => {
    const result = await ingest(deps, 'accesslog', 'istio_json', request, parseAccessLogLine, parseAccessLogObject, TOPICS.requests, requestKey);
    return reply.code(statusOf(result)).send(result);
  });
  app.post('/v1/flows', { onRequest: [deps.gate('flows'), supportedType] }, async (request, reply) => {
    const result = await ingest(deps, 'flows', 'hubble', request, parseFlowLine, parseFlowObject, TOPICS.flows, destinationHostOf);
    return reply.code(statusOf(result)).send(result);
  });
}
