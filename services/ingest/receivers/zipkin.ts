/**
 * Zipkin v2 receiver: `POST /api/v2/spans`, a JSON array of spans as Envoy's zipkin tracer posts them
 * (https://zipkin.io/zipkin-api/#/default/post_spans), optionally gzip. Answers 202 like Zipkin itself,
 * with the meshlens reply body; 400 when no span in the body was usable.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TOPICS } from '../../../lib/bus';
import { HttpError, wholeBody, type BodyChunks } from '../../../lib/runtime';
import { parseZipkin } from '../formats/zipkin';
import type { IngestPipeline } from '../pipeline';

export interface ZipkinDeps {
  pipeline: IngestPipeline;
  onRequest: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
}

/** Before the body is read: a type Zipkin does not take is refused without buffering the body. */
async function supportedType(request: FastifyRequest): Promise<void> {
  const ct = (request.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  if (ct !== 'application/json' && ct !== 'text/plain') {
    throw new HttpError(415, 'unsupported_media_type', `Content-Type ${ct} is not supported; Zipkin v2 takes application/json`);
  }
}

export function registerZipkinRoutes(app: FastifyInstance, deps: ZipkinDeps): void {
  app.post('/api/v2/spans', { onRequest: [deps.onRequest, supportedType] }, async (request, reply) => {
    const body = wholeBody(request.body as BodyChunks | undefined);
    const parsed = parseZipkin(body);
    if (!parsed.ok) {
      const result = await deps.pipeline.rejectBody('zipkin', 'zipkin', parsed.reason, parsed.message, body);
      return reply.code(400).send(result);
    }
    const result = await deps.pipeline.batch('zipkin', 'zipkin', parsed.value, TOPICS.spans, (s) => s.traceId);
    return reply.code(result.accepted > 0 || result.rejected === 0 ? 202 : 400).send(result);
  });
}
