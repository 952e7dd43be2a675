/**
 * The ingest target: every receiver of CONTRACT.md §3, parsing into normalized records on the bus.
 * Built without listening; bin/ binds the ports.
 */
import type { Server } from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Bus } from '../../lib/bus/types';
import { bearerAuth, createHttpServer } from '../../lib/runtime/http';
import type { Logger } from '../../lib/runtime/logger';
import { createIngestMetrics } from './metrics';
import { IngestPipeline } from './pipeline';
import { registerLineRoutes } from './receivers/lines';
import { createOtlpGrpcServer } from './receivers/otlp-grpc';
import { registerOtlpHttpRoutes } from './receivers/otlp-http';
import { registerZipkinRoutes } from './receivers/zipkin';

export { startDeadLetterFileSink } from './deadletters';
export { bindGrpc } from './receivers/otlp-grpc';
export { MAX_REPLY_ERRORS } from './pipeline';
export type { IngestReply, ReplyError } from './pipeline';

export interface IngestDeps {
  bus: Bus;
  registry: Registry;
  logger: Logger;
  ingestToken: string | undefined;
  maxBodyBytes: number;
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
}

export function createIngest(deps: IngestDeps): Ingest {
  const pipeline = new IngestPipeline(deps.bus, createIngestMetrics(deps.registry));
  const onRequest = bearerAuth(deps.ingestToken);
  const httpOptions = { logger: deps.logger, maxBodyBytes: deps.maxBodyBytes };

  const otlpHttp = createHttpServer(httpOptions);
  registerOtlpHttpRoutes(otlpHttp, { pipeline, onRequest });
  const zipkin = createHttpServer(httpOptions);
  registerZipkinRoutes(zipkin, { pipeline, onRequest });
  const grpc = createOtlpGrpcServer({ pipeline, logger: deps.logger, ingestToken: deps.ingestToken, maxBodyBytes: deps.maxBodyBytes });

  return {
    registerHttpRoutes: (app) => registerLineRoutes(app, { pipeline, onRequest }),
    otlpHttp,
    zipkin,
    grpc,
  };
}
