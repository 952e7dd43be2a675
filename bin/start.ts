/**
 * Wires the targets of one process and binds their ports. The CLI (meshlens.ts) and the end-to-end tests
 * both start meshlens through `start()`, so tests exercise exactly what `npm start` runs.
 */
import type { AddressInfo } from 'node:net';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { createKafkaBus, createMemoryBus, registerPipelineGauges, type Bus, type Subscription } from '../lib/bus';
import {
  addOpsRoutes,
  advertiseAddress,
  bearerAuth,
  claimDataDir,
  ConfigError,
  createHttpServer,
  Health,
  loadMeshConfig,
  MemberDirectory,
  newInstanceId,
  startMembership,
  type Config,
  type Logger,
  type Membership,
} from '../lib/runtime';
import { emptyMeshConfig } from '../lib/model';
import type { MeshConfig } from '../lib/model';
import { createAggregator } from '../services/aggregator';
import type { Aggregator } from '../services/aggregator';
import { bindGrpc, createIngest, startDeadLetterFileSink } from '../services/ingest';
import { createPrometheusTargets } from '../services/provisioner';
import type { PrometheusTargets } from '../services/provisioner';

/** Targets available in this build. `all` is every one of them in one process. */
export const TARGETS = ['all', 'ingest', 'aggregator'] as const;
export type Target = (typeof TARGETS)[number];

/**
 * What a graceful stop keeps for itself out of MESHLENS_SHUTDOWN_TIMEOUT after the receivers' requests and the
 * bus were given their time: closing the servers, the consumers and the store. The CLI forces the exit at the
 * full timeout, so a stop that runs long is still cut short by the process, never by a supervisor's SIGKILL.
 */
const CLOSE_RESERVE_MS = 1_500;
const DAY_MS = 86_400_000;

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
  /**
   * Graceful stop, within MESHLENS_SHUTDOWN_TIMEOUT: not ready; every receiver answers 503 + Retry-After; the
   * requests already taken are stored and answered; what is left unstored is logged and counted (its senders
   * are told to retry); then servers, consumers, store and bus close.
   */
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

/** Reads MESHLENS_MESH_CONFIG; problems in the files are logged, a missing path stops the start. */
async function meshConfigFor(config: Config, logger: Logger): Promise<MeshConfig> {
  if (config.meshConfigPath === undefined) return emptyMeshConfig();
  const { config: mesh, problems } = await loadMeshConfig(config.meshConfigPath);
  for (const p of problems) logger.warn({ problem: p }, 'mesh config problem');
  logger.info({ path: config.meshConfigPath, hosts: mesh.hosts.size, problems: problems.length }, 'mesh config loaded');
  return mesh;
}

/** Resolves with `p`, or with `fallback` once `ms` passed: a stop step that hangs must not hold the rest. */
function within<T>(ms: number, p: Promise<T>, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export async function start(opts: StartOptions): Promise<Running> {
  const { config, logger } = opts;
  const serving = opts.target === 'all' || opts.target === 'aggregator';
  const ingesting = opts.target === 'all' || opts.target === 'ingest';
  const memoryBus = opts.bus === undefined && config.kafkaBrokers.length === 0;
  // Nothing silent (CONTRACT.md §1): a split target on a process-private bus would publish to nobody, or consume nothing.
  if (memoryBus && opts.target !== 'all') {
    const role = opts.target === 'ingest' ? 'publishes every record to Kafka' : 'consumes its records from Kafka';
    throw new ConfigError([`MESHLENS_KAFKA_BROKERS is not set: the ${opts.target} target ${role}; set it, or run the all-in-one (meshlens all)`]);
  }

  // The data dir holds the embedded ClickHouse and the all-in-one's dead letters: one process at a time.
  const releaseDataDir = memoryBus || (serving && config.clickhouseUrl === undefined) ? claimDataDir(config.dataDir) : () => undefined;

  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'meshlens_process_' });
  const health = new Health();
  const bus =
    opts.bus ??
    (config.kafkaBrokers.length > 0
      ? createKafkaBus({ brokers: config.kafkaBrokers, clientId: `meshlens-${opts.target}`, logger })
      : createMemoryBus({ capacity: config.busCapacity, logger }));
  health.register('bus', () => bus.ready());
  registerPipelineGauges(registry, bus);
  const unstored = new Counter({
    name: 'meshlens_pipeline_unstored_records_total',
    help: 'Records taken in but not stored when meshlens stopped; their senders were answered 503 and retry.',
    registers: [registry],
  });

  const subscriptions: Subscription[] = [];
  // With the in-memory bus nothing else keeps rejected input: the all-in-one writes it to the data dir.
  if (memoryBus) {
    subscriptions.push(
      await startDeadLetterFileSink(bus, {
        dataDir: config.dataDir,
        maxBytes: config.deadLetterMaxBytes,
        retentionDays: config.deadLetterRetentionDays,
        registry,
        logger,
      }),
    );
  }

  const instance = newInstanceId();
  const startedAtMs = Date.now();
  const directory = serving ? new MemberDirectory() : undefined;
  let aggregator: Aggregator | undefined;
  let prometheusTargets: PrometheusTargets | undefined;
  let meshConfig: MeshConfig | undefined;
  if (serving) {
    meshConfig = await meshConfigFor(config, logger);
    aggregator = await createAggregator({
      bus,
      registry,
      logger,
      meshConfig,
      clickhouseUrl: config.clickhouseUrl,
      dataDir: config.dataDir,
      rawRetentionDays: config.rawRetentionDays,
      rollupRetentionDays: config.rollupRetentionDays,
      maxClockSkewMs: config.maxClockSkewMs,
      maxSeries: config.maxSeries,
      canary: config.canary,
      queryTimeoutMs: config.queryTimeoutMs,
    });
    const agg = aggregator;
    health.register('store', () => agg.ready());
  }
  const ingest = ingesting
    ? createIngest({
        bus,
        registry,
        logger,
        ingestToken: config.ingestToken,
        maxBodyBytes: config.maxBodyBytes,
        maxInflightBytes: config.maxInflightBytes,
        bounds: { maxAgeMs: config.rawRetentionDays * DAY_MS, maxAheadMs: config.maxClockSkewMs },
        // In the all-in-one an acknowledgement needs the store too: while it is down, senders get 503 at once.
        ready: () => bus.ready() && (aggregator === undefined || aggregator.ready()),
      })
    : undefined;

  const http = createHttpServer({ logger, maxBodyBytes: config.maxBodyBytes, budget: ingest?.budget });
  if (config.apiToken !== undefined) {
    // Every route under /api/ (query API, Prometheus HTTP SD); /metrics and health stay open for Prometheus and probes.
    const apiAuth = bearerAuth(config.apiToken);
    http.addHook('onRequest', async (request, reply) => {
      if (request.url.startsWith('/api/')) await apiAuth(request, reply);
    });
  }
  addOpsRoutes(http, health, registry);
  if (aggregator && meshConfig) {
    aggregator.registerRoutes(http);
    prometheusTargets = createPrometheusTargets({ directory: directory as MemberDirectory, meshConfig, fileSdPath: config.fileSdPath, logger });
    prometheusTargets.registerRoutes(http);
  }
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
  const address = advertiseAddress({ advertiseAddress: config.advertiseAddress, listenHost: host, port: ports.http });
  const membership: Membership = await startMembership({
    bus,
    self: { instance, target: opts.target, address, startedAtMs },
    publish: serving || !memoryBus,
    directory,
    logger,
  });
  await prometheusTargets?.start();
  health.markStarted();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const deadline = Date.now() + Math.max(500, config.shutdownTimeoutMs - CLOSE_RESERVE_MS);
      const left = (): number => Math.max(0, deadline - Date.now());
      health.markStopping();
      // 1. Intake stops on every receiver at once: new requests get 503 + Retry-After, before any body is read.
      ingest?.intake.close();
      // First of the rest, so the serving process unlists this one before its /metrics goes away.
      await membership.stop();
      // 2. What was taken is finished: its records are stored and its senders get their acknowledgement.
      const answered = ingest ? await ingest.intake.idle(left()) : true;
      const drained = await bus.drain(left());
      // 3. Anything left is counted and logged; closing the bus answers its senders 503 (memory) or leaves it in Kafka.
      const notStored = bus.pending().reduce((n, p) => n + p.records, 0);
      if (memoryBus && (notStored > 0 || !answered || !drained)) {
        unstored.inc(notStored);
        logger.warn(
          { records: notStored, requests: ingest?.intake.inFlight ?? 0, shutdownTimeoutMs: config.shutdownTimeoutMs },
          'stopping with records not stored; their senders are answered 503 and retry',
        );
      } else if (notStored > 0) {
        logger.info({ records: notStored }, 'stopping with records not yet consumed; Kafka keeps them for the next consumer');
      }
      await within(left() + CLOSE_RESERVE_MS / 3, bus.close(), undefined);
      // 4. Servers, then consumers and the store. Requests still open are answered by now (the bus rejected them).
      await within(
        CLOSE_RESERVE_MS / 3,
        Promise.all([
          http.close(),
          ingest?.otlpHttp.close(),
          ingest?.zipkin.close(),
          ingest && new Promise<void>((resolve) => ingest.grpc.tryShutdown(() => resolve())),
        ]).then(() => undefined),
        undefined,
      );
      ingest?.grpc.forceShutdown();
      for (const s of subscriptions) await s.stop();
      await prometheusTargets?.close();
      await within(CLOSE_RESERVE_MS / 3, aggregator?.close() ?? Promise.resolve(), undefined);
      releaseDataDir();
    })();
    return closing;
  };
  return { ports, bus, health, registry, aggregator, instance, advertiseAddress: address, prometheusTargets, close };
}
