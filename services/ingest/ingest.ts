/**
 * The ingest target: every receiver of CONTRACT.md §3, parsing into normalized records on the bus.
 * Built without listening; bin/ binds the ports.
 */
import type { Server } from '@grpc/grpc-js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import type { Bus } from '../../lib/bus';
import { bearerAuth, BodyBudget, createHttpServer, RETRY_AFTER_SECONDS, type Logger } from '../../lib/runtime';
import { Intake } from './intake';
import { createIngestMetrics, type ReceiverName } from './metrics';
import { IngestPipeline, type EventTimeBounds } from './pipeline';
import { registerLineRoutes } from './receivers/lines';
import { createOtlpGrpcServer } from './receivers/otlp-grpc';
import { registerOtlpHttpRoutes } from './receivers/otlp-http';
import { registerZipkinRoutes } from './receivers/zipkin';

export interface IngestDeps {
  bus: Bus;
  registry: Registry;
  logger: Logger;
  ingestToken: string | undefined;
  maxBodyBytes: number;
  /** Decompressed bytes all receivers together hold at once (MESHLENS_MAX_INFLIGHT_BYTES). */
  maxInflightBytes: number;
  bounds: EventTimeBounds;
  /** Whether the pipeline behind the receivers can store records now; while false they answer 503. */
  ready?: () => boolean;
  now?: () => number;
}

export interface Ingest {
  /** Adds `/v1/accesslogs` and `/v1/flows` to the meshlens HTTP server (the port it shares with the API). */
  registerHttpRoutes(app: FastifyInstance): void;
  /** OTLP/HTTP server (`/v1/logs`, `/v1/traces`), for the OTLP HTTP port. */
  otlpHttp: FastifyInstance;
  /** Zipkin v2 server (`/api/v2/spans`), for the Zipkin port. */
  zipkin: FastifyInstance;
  /** OTLP/gRPC server (logs and traces), for the OTLP gRPC port. */
  grpc: Server;
  /** Bytes in flight, shared by every receiver; the server that hosts `registerHttpRoutes` must be built with it. */
  budget: BodyBudget;
  /** Admission: `close()` makes every receiver answer 503, `idle()` waits for the requests already taken. */
  intake: Intake;
}

export function createIngest(deps: IngestDeps): Ingest {
  const metrics = createIngestMetrics(deps.registry);
  const pipeline = new IngestPipeline(deps.bus, metrics, { bounds: deps.bounds, now: deps.now });
  const intake = new Intake(deps.ready);
  const budget = new BodyBudget(deps.maxInflightBytes);
  const auth = bearerAuth(deps.ingestToken);

  /**
   * Before a body is read: the token (401), then admission (503 + Retry-After while stopping or unavailable).
   * A request taken is tracked until its response is over, and every 429/503 it ends with is counted.
   */
  const gate =
    (receiver: ReceiverName) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      let taken = false;
      reply.raw.once('close', () => {
        if (taken) intake.end();
        // A sender that left before its answer was written is `aborted`, not the status the answer would have had.
        const code = reply.raw.writableFinished ? reply.statusCode : 'aborted';
        metrics.requests.inc({ receiver, code: String(code) });
        if (code === 429 || code === 503) metrics.retries.inc({ receiver });
      });
      await auth(request, reply);
      if (reply.sent) return;
      const refusal = intake.refusal();
      if (refusal !== undefined) {
        await reply.code(503).header('retry-after', String(RETRY_AFTER_SECONDS)).send({ error: refusal.code, message: refusal.message });
        return;
      }
      intake.begin();
      taken = true;
    };

  const httpOptions = { logger: deps.logger, maxBodyBytes: deps.maxBodyBytes, budget };
  const otlpHttp = createHttpServer(httpOptions);
  registerOtlpHttpRoutes(otlpHttp, { pipeline, onRequest: gate('otlp_http') });
  const zipkin = createHttpServer(httpOptions);
  registerZipkinRoutes(zipkin, { pipeline, onRequest: gate('zipkin') });
  const grpc = createOtlpGrpcServer({ pipeline, logger: deps.logger, ingestToken: deps.ingestToken, maxBodyBytes: deps.maxBodyBytes, intake, budget, metrics });

  return {
    registerHttpRoutes: (app) => registerLineRoutes(app, { pipeline, gate }),
    otlpHttp,
    zipkin,
    grpc,
    budget,
    intake,
  };
}
