/**
 * Wires the targets of one process and binds their ports. The CLI (meshlens.ts) and the end-to-end tests
 * both start meshlens through `start()`, so tests exercise exactly what `npm start` runs.
 */
import type { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { createKafkaBus, createMemoryBus } from '../lib/bus';
import type { Bus, Subscription } from '../lib/bus';
import type { Config } from '../lib/runtime/config';
import { Health } from '../lib/runtime/health';
import { addOpsRoutes, createHttpServer } from '../lib/runtime/http';
import type { Logger } from '../lib/runtime/logger';
import { bindGrpc, createIngest, startDeadLetterFileSink } from '../services/ingest';

/** Targets available in this build. `all` is every one of them in one process. */
export const TARGETS = ['all', 'ingest'] as const;
export type Target = (typeof TARGETS)[number];

export interface Ports {
  http: number;
  otlpGrpc: number;
  otlpHttp: number;
  zipkin: number;
}

export interface Running {
  ports: Ports;
  bus: Bus;
  health: Health;
  registry: Registry;
  /** Graceful stop: not ready, stop intake, drain consumers, close the bus. */
  close(): Promise<void>;
}

export interface StartOptions {
  config: Config;
  target: Target;
  logger: Logger;
  /** Inject a bus (tests); otherwise memory, or Kafka when brokers are configured. */
  bus?: Bus;
  /** Collect Node.js process metrics on /metrics (off in tests that start several instances). */
  processMetrics?: boolean;
}

export async function start(opts: StartOptions): Promise<Running> {
  const { config, logger } = opts;
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'meshlens_process_' });
  const health = new Health();
  const bus =
    opts.bus ??
    (config.kafkaBrokers.length > 0
      ? createKafkaBus({ brokers: config.kafkaBrokers, clientId: `meshlens-${opts.target}`, logger })
      : createMemoryBus({ capacity: config.busCapacity }));
  health.register('bus', () => bus.ready());

  const subscriptions: Subscription[] = [];
  // With the in-memory bus nothing else keeps rejected input: the all-in-one writes it to the data dir.
  if (config.kafkaBrokers.length === 0 && opts.bus === undefined) {
    subscriptions.push(await startDeadLetterFileSink(bus, config.dataDir));
  }

  const http = createHttpServer({ logger, maxBodyBytes: config.maxBodyBytes });
  addOpsRoutes(http, health, registry);
  const ingest = createIngest({ bus, registry, logger, ingestToken: config.ingestToken, maxBodyBytes: config.maxBodyBytes });
  ingest.registerHttpRoutes(http);

  const host = config.listenHost;
  const listen = async (app: typeof http, port: number): Promise<number> => {
    await app.listen({ host, port });
    return (app.server.address() as AddressInfo).port;
  };
  const ports: Ports = {
    http: await listen(http, config.httpPort),
    otlpHttp: await listen(ingest.otlpHttp, config.otlpHttpPort),
    zipkin: await listen(ingest.zipkin, config.zipkinPort),
    otlpGrpc: await bindGrpc(ingest.grpc, host, config.otlpGrpcPort),
  };
  health.markStarted();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      health.markStopping();
      await Promise.all([
        ingest.otlpHttp.close(),
        ingest.zipkin.close(),
        new Promise<void>((resolve) => ingest.grpc.tryShutdown(() => resolve())),
      ]);
      await http.close();
      for (const s of subscriptions) await s.stop();
      await bus.close();
    })();
    return closing;
  };
  return { ports, bus, health, registry, close };
}
