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
import { emptyMeshConfig } from '../lib/model';
import type { MeshConfig } from '../lib/model';
import { loadMeshConfig } from '../lib/runtime';
import { MemberDirectory, advertiseAddress, newInstanceId, startMembership } from '../lib/runtime/membership';
import type { Membership } from '../lib/runtime/membership';
import { createAggregator } from '../services/aggregator';
import type { Aggregator } from '../services/aggregator';
import { bindGrpc, createIngest, startDeadLetterFileSink } from '../services/ingest';
import { createPrometheusTargets } from '../services/provisioner';
import type { PrometheusTargets } from '../services/provisioner';

/** Targets available in this build. `all` is every one of them in one process. */
export const TARGETS = ['all', 'ingest', 'aggregator'] as const;
export type Target = (typeof TARGETS)[number];

/** How long a graceful stop waits for consumers to store what the bus holds (the CLI allows 8 s in all). */
const SHUTDOWN_DRAIN_MS = 5_000;

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
  /** The aggregator (targets `all` and `aggregator`). */
  aggregator: Aggregator | undefined;
  /** This process in membership heartbeats and Prometheus target labels (`meshlens_instance`). */
  instance: string;
  /** `host:port` Prometheus and peers reach the HTTP port at (MESHLENS_ADVERTISE_ADDRESS or derived). */
  advertiseAddress: string;
  /** `GET /api/v1/prometheus/targets` and the file_sd file (targets `all` and `aggregator`). */
  prometheusTargets: PrometheusTargets | undefined;
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
  /** Aggregator insert batching; tests shorten the wait so records are queryable sooner. */
  batchWaitMs?: number;
}

/** Reads MESHLENS_MESH_CONFIG; problems in the files are logged, a missing path stops the start. */
async function meshConfigFor(config: Config, logger: Logger): Promise<MeshConfig> {
  if (config.meshConfigPath === undefined) return emptyMeshConfig();
  const { config: mesh, problems } = await loadMeshConfig(config.meshConfigPath);
  for (const p of problems) logger.warn({ problem: p }, 'mesh config problem');
  logger.info({ path: config.meshConfigPath, hosts: mesh.hosts.size, problems: problems.length }, 'mesh config loaded');
  return mesh;
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

  // The process that answers queries also serves the Prometheus targets of every meshlens process it hears of.
  const serving = opts.target === 'all' || opts.target === 'aggregator';
  const instance = newInstanceId();
  const startedAtMs = Date.now();
  const directory = serving ? new MemberDirectory() : undefined;
  let aggregator: Aggregator | undefined;
  let prometheusTargets: PrometheusTargets | undefined;
  if (serving) {
    const meshConfig = await meshConfigFor(config, logger);
    aggregator = await createAggregator({
      bus,
      registry,
      logger,
      meshConfig,
      clickhouseUrl: config.clickhouseUrl,
      dataDir: config.dataDir,
      rawRetentionDays: config.rawRetentionDays,
      rollupRetentionDays: config.rollupRetentionDays,
      maxSeries: config.maxSeries,
      canary: config.canary,
      queryTimeoutMs: config.queryTimeoutMs,
      batchWaitMs: opts.batchWaitMs,
    });
    const agg = aggregator;
    health.register('store', () => agg.ready());
    aggregator.registerRoutes(http);
    prometheusTargets = createPrometheusTargets({ directory: directory as MemberDirectory, meshConfig, fileSdPath: config.fileSdPath, logger });
    prometheusTargets.registerRoutes(http);
  }
  const ingest =
    opts.target === 'all' || opts.target === 'ingest'
      ? createIngest({ bus, registry, logger, ingestToken: config.ingestToken, maxBodyBytes: config.maxBodyBytes })
      : undefined;
  ingest?.registerHttpRoutes(http);

  const host = config.listenHost;
  const listen = async (app: typeof http, port: number): Promise<number> => {
    await app.listen({ host, port });
    return (app.server.address() as AddressInfo).port;
  };
  // The aggregator target serves only HTTP (query API, /metrics, health); 0 = that receiver is not served.
  const ports: Ports = {
    http: await listen(http, config.httpPort),
    otlpHttp: ingest ? await listen(ingest.otlpHttp, config.otlpHttpPort) : 0,
    zipkin: ingest ? await listen(ingest.zipkin, config.zipkinPort) : 0,
    otlpGrpc: ingest ? await bindGrpc(ingest.grpc, host, config.otlpGrpcPort) : 0,
  };
  // After listen: the advertised address needs the bound port. A bus only this process uses (the all-in-one's
  // memory bus) has nobody else to hear heartbeats, so a process that does not list members keeps quiet there.
  const privateBus = opts.bus === undefined && config.kafkaBrokers.length === 0;
  const address = advertiseAddress({ advertiseAddress: config.advertiseAddress, listenHost: host, port: ports.http });
  const membership: Membership = await startMembership({
    bus,
    self: { instance, target: opts.target, address, startedAtMs },
    publish: serving || !privateBus,
    directory,
    logger,
  });
  await prometheusTargets?.start();
  health.markStarted();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      health.markStopping();
      // First, so the serving process unlists this one before its /metrics goes away.
      await membership.stop();
      if (ingest) {
        await Promise.all([
          ingest.otlpHttp.close(),
          ingest.zipkin.close(),
          new Promise<void>((resolve) => ingest.grpc.tryShutdown(() => resolve())),
        ]);
      }
      // Intake is closed; what the memory bus still holds is delivered and stored before the consumers stop.
      if (!(await bus.drain(SHUTDOWN_DRAIN_MS))) logger.warn({}, 'stopping with records not yet stored');
      await http.close();
      for (const s of subscriptions) await s.stop();
      await prometheusTargets?.close();
      await aggregator?.close();
      await bus.close();
    })();
    return closing;
  };
  return { ports, bus, health, registry, aggregator, instance, advertiseAddress: address, prometheusTargets, close };
}
