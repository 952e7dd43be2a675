/**
 * The HTTP server factory shared by every target: raw-body parsing with decompression and limits, one
 * error shape, optional bearer auth for receivers, health and metrics routes. Builds without listening
 * (DESIGN.md "Build without listening"): tests use `inject()`, only bin/ calls `listen()`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { readBody, HttpError, RETRY_AFTER_SECONDS, type BodyBudget } from './body';
import type { Health } from './health';
import type { Logger } from './logger';
import { ExpositionRegistry } from './registry';

export interface HttpServerOptions {
  logger: Logger;
  /** Largest body, counted after decompression. */
  maxBodyBytes: number;
  /** Bytes of bodies in flight, shared by every server of the process's receivers; a body is held until its response is over. */
  budget?: BodyBudget;
}

interface RetriableError {
  retriable: boolean;
  code?: string;
  message: string;
}

function isRetriable(err: unknown): err is RetriableError {
  return typeof err === 'object' && err !== null && (err as { retriable?: unknown }).retriable === true;
}

export function createHttpServer(opts: HttpServerOptions): FastifyInstance {
  const app: FastifyInstance = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast only widens fastify's logger type parameter.
    loggerInstance: opts.logger as unknown as FastifyBaseLogger,
    // One log line per request would dominate the ingest hot path; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Compressed bytes can't exceed the decompressed limit by much; readBody enforces the real limit.
    bodyLimit: opts.maxBodyBytes,
    // Fastify's own 503 while closing carries no Retry-After; the receivers answer a stopping process's
    // requests themselves (503 + Retry-After, CONTRACT.md §3), so requests on open connections reach them.
    return503OnClosing: false,
  });
  app.removeAllContentTypeParsers();
  const budget = opts.budget;
  // What each request's body holds of the budget, given back when its response is over ('close' fires when the
  // response finished or the connection died, whichever comes first). A body still being decompressed when the
  // client left is given back the moment it is read.
  const held = new WeakMap<IncomingMessage, { bytes: number; closed: boolean }>();
  if (budget) {
    app.addHook('onRequest', (request, reply, done) => {
      const h = { bytes: 0, closed: false };
      held.set(request.raw, h);
      reply.raw.once('close', () => {
        h.closed = true;
        budget.give(h.bytes);
        h.bytes = 0;
      });
      done();
    });
  }
  const hold = (request: FastifyRequest, bytes: number): void => {
    const h = held.get(request.raw);
    if (h === undefined || h.closed) budget?.give(bytes);
    else h.bytes = bytes;
  };
  app.addContentTypeParser('*', (request, payload, done) => {
    readBody(payload, request.headers['content-encoding'], opts.maxBodyBytes, budget, (n) => hold(request, n)).then(
      (body) => done(null, body),
      (err: Error) => done(err),
    );
  });
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof HttpError) {
      for (const [k, v] of Object.entries(err.headers)) void reply.header(k, v);
      return reply.code(err.statusCode).send({ error: err.code, message: err.message });
    }
    if ((err as { code?: unknown }).code === 'BUS_TOO_LARGE') {
      // More records in one body than the pipeline holds at once: the sender must split it.
      return reply.code(413).send({ error: 'too_many_records', message: `${(err as Error).message}; send smaller bodies (or raise MESHLENS_BUS_CAPACITY)` });
    }
    if (isRetriable(err)) {
      // The bus is full or unavailable: nothing was taken, the client must retry (CONTRACT.md §3).
      const full = err.code === 'BUS_FULL';
      return reply
        .code(full ? 429 : 503)
        .header('retry-after', String(RETRY_AFTER_SECONDS))
        .send({ error: full ? 'pipeline_full' : 'pipeline_unavailable', message: err.message });
    }
    const fastifyErr = err as { statusCode?: number; code?: string; message?: string };
    if (fastifyErr.statusCode === 413 || fastifyErr.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({ error: 'body_too_large', message: fastifyErr.message ?? 'body too large' });
    }
    if (typeof fastifyErr.statusCode === 'number' && fastifyErr.statusCode >= 400 && fastifyErr.statusCode < 500) {
      return reply.code(fastifyErr.statusCode).send({ error: fastifyErr.code ?? 'bad_request', message: fastifyErr.message });
    }
    request.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error' });
  });
  return app;
}

/**
 * An onRequest hook that requires `Authorization: Bearer <token>` (MESHLENS_INGEST_TOKEN for receivers,
 * MESHLENS_API_TOKEN for `/api/*`); a no-op when no token is configured.
 */
export function bearerAuth(token: string | undefined): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const expected = token === undefined ? undefined : tokenDigest(token);
  return async (request, reply) => {
    if (expected === undefined) return;
    if (!checkBearer(request.headers.authorization, expected)) {
      await reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({ error: 'unauthorized', message: 'a valid Authorization: Bearer token is required' });
    }
  };
}

/** SHA-256 of a token: what is compared, so the comparison takes the same time whatever the token's length. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** `Bearer` in any case (RFC 7235 §2.1), one or more spaces, the token, nothing else. */
const BEARER = /^bearer +(\S+) *$/i;

/**
 * Constant-time check of an Authorization header value against a token's digest: the header's token is hashed
 * too (also when the header does not parse), and the two 32-byte digests are compared with timingSafeEqual.
 */
export function checkBearer(header: string | undefined, expected: Buffer): boolean {
  const m = header === undefined ? null : BEARER.exec(header);
  const same = timingSafeEqual(tokenDigest(m ? (m[1] as string) : ''), expected);
  return same && m !== null;
}

/** `/livez`, `/healthz` (alias), `/readyz` and `/metrics`. */
export function addOpsRoutes(app: FastifyInstance, health: Health, registry: Registry): void {
  const live = async (): Promise<{ status: string }> => ({ status: 'ok' });
  app.get('/livez', live);
  app.get('/healthz', live);
  app.get('/readyz', async (_request, reply) => {
    const r = health.readiness();
    return reply.code(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'not_ready', checks: r.checks });
  });
  app.get('/metrics', async (_request, reply) => {
    // Streamed in the pieces it was rendered in: a 10k-series scrape is never one 15 MB string.
    const body = registry instanceof ExpositionRegistry ? Readable.from(await registry.metricsChunks()) : await registry.metrics();
    return reply.header('content-type', registry.contentType).send(body);
  });
}
