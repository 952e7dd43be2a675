/**
 * Wires the targets of one process and binds their ports. The CLI (meshlens.ts) and the end-to-end tests
 * both start meshlens through `start()`, so tests exercise exactly what `npm start` runs.
 */
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics } from 'prom-client';
import { METRICS } from '../lib/catalogue';
import { createKafkaBus, createMemoryBus, registerPipelineGauges, type Bus, type Subscription } from '../lib/bus';
import {
  addOpsRoutes,
  bearerAuth,
  claimDataDir,
  ConfigError,
  createHttpServer,
  DAY_MS,
  ExpositionRegistry,
  Health,
  redactUrl,
  StartError,
  within,
  type Config,
  type Logger,
} from '../lib/runtime';
import { emptyMeshConfig, loadMeshConfig, type MeshConfig } from '../lib/meshconfig';
import { advertiseAddress, MemberDirectory, newInstanceId, startMembership, type Membership } from '../lib/membership';
import { createAggregator, createPrometheusTargets } from '../services/aggregator';
import type { Aggregator, PrometheusTargets } from '../services/aggregator';
import { bindGrpc, createIngest, startDeadLetterFileSink } from '../services/ingest';
import { pushDashboards } from '../services/provisioner';
import type { GrafanaPushOptions, GrafanaPushResult } from '../services/provisioner';
import { createTracer, type Tracer } from '../services/tracer';

/** Targets available in this build. `all` is every one of them in one process. */
export const TARGETS = ['all', 'ingest', 'aggregator', 'tracer', 'provisioner'] as const;
export type Target = (typeof TARGETS)[number];

/**
 * How a graceful stop spends MESHLENS_SHUTDOWN_TIMEOUT: the requests already taken and the bus get all of it
 * but CLOSE_RESERVE_MS; closing the bus, the servers, the consumers and the store get that reserve; and the
 * whole plan ends EXIT_MARGIN_MS before the CLI's forced exit, so the process exits on its own account.
 */
const CLOSE_RESERVE_MS = 1_500;
const EXIT_MARGIN_MS = 300;

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
  registry: ExpositionRegistry;
  /** The aggregator (targets `all` and `aggregator`). */
  aggregator: Aggregator | undefined;
  /** This process in membership heartbeats and Prometheus target labels (`meshlens_instance`). */
  instance: string;
  /** `host:port` Prometheus and peers reach the HTTP port at (MESHLENS_ADVERTISE_ADDRESS or derived). */
  advertiseAddress: string;
  /** `GET /api/v1/prometheus/targets` and the file_sd file (targets `all` and `aggregator`). */
  prometheusTargets: PrometheusTargets | undefined;
  /**
   * The dashboards' push to MESHLENS_GRAFANA_URL (targets `provisioner` and `all`), running beside the rest of
   * the process: what was pushed, or undefined when there is no push or it failed (the failure is logged).
   */
  grafanaPush: Promise<GrafanaPushResult | undefined>;
  /**
   * Graceful stop, within MESHLENS_SHUTDOWN_TIMEOUT: not ready; every receiver answers 503 + Retry-After; the
   * requests already taken are stored and answered; what is left unstored is logged and counted (its senders
   * are told to retry); then bus, servers, consumers and store close. Rejects, after releasing what it could,
   * when a step ran out of time (the CLI then exits 1).
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
  /** The tracer's batching, retry and sampling timings (tests shorten them). */
  tracerTuning?: Parameters<typeof createTracer>[0]['tuning'];
  /** The Grafana push's retry timings (tests shorten them). */
  grafanaTuning?: Pick<GrafanaPushOptions, 'budgetMs' | 'backoffMs' | 'maxBackoffMs' | 'timeoutMs'>;
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
  const serving = opts.target === 'all' || opts.target === 'aggregator';
  const ingesting = opts.target === 'all' || opts.target === 'ingest';
  // The all-in-one exports spans only when told where; the tracer target exists for nothing else.
  const tracing = opts.target === 'tracer' || (opts.target === 'all' && config.jaegerEndpoint !== undefined);
  if (opts.target === 'tracer' && config.jaegerEndpoint === undefined) {
    throw new StartError('MESHLENS_JAEGER_ENDPOINT is not set: the tracer target exports spans to it; set it to an OTLP/HTTP base URL such as http://jaeger:4318');
  }
  if (opts.target === 'provisioner' && config.grafanaUrl === undefined) {
    throw new StartError('MESHLENS_GRAFANA_URL is not set: the provisioner target pushes the dashboards to it; set it (and MESHLENS_GRAFANA_TOKEN) to your Grafana, such as http://grafana:3000');
  }
  // The provisioner neither publishes nor consumes records: it needs no Kafka, data directory or dead letters.
  const pipeline = opts.target !== 'provisioner';
  const memoryBus = opts.bus === undefined && config.kafkaBrokers.length === 0;
  // Nothing silent (CONTRACT.md §1): a split target on a process-private bus would publish to nobody, or consume nothing.
  if (memoryBus && opts.target !== 'all' && pipeline) {
    const role = opts.target === 'ingest' ? 'publishes every record to Kafka' : 'consumes its records from Kafka';
    throw new ConfigError([`MESHLENS_KAFKA_BROKERS is not set: the ${opts.target} target ${role}; set it, or run the all-in-one (meshlens all)`]);
  }

  // The data dir holds the embedded ClickHouse and the all-in-one's dead letters: one process at a time.
  const releaseDataDir = (memoryBus && pipeline) || (serving && config.clickhouseUrl === undefined) ? claimDataDir(config.dataDir) : () => undefined;

  const registry = new ExpositionRegistry();
  // prom-client's own names (`process_cpu_seconds_total`, `nodejs_heap_size_used_bytes`...), as every Node.js
  // dashboard and the Go and Java clients' `process_*` expect; the `job` label says which program it is. A prefix
  // only doubled them (`meshlens_process_process_cpu_seconds_total`, issue 13).
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const health = new Health();
  const bus =
    opts.bus ??
    (config.kafkaBrokers.length > 0
      ? createKafkaBus({ brokers: config.kafkaBrokers, clientId: `meshlens-${opts.target}`, logger })
      : createMemoryBus({ capacity: config.busCapacity, logger }));
  health.register('bus', () => bus.ready());
  registerPipelineGauges(registry, bus);
  const unstored = new Counter({
    name: METRICS.pipelineUnstoredRecords.name,
    help: METRICS.pipelineUnstoredRecords.help,
    registers: [registry],
  });

  const subscriptions: Subscription[] = [];
  // With the in-memory bus nothing else keeps rejected input: the all-in-one writes it to the data dir.
  const deadLetterSink =
    memoryBus && pipeline
    ? await startDeadLetterFileSink(bus, {
        dataDir: config.dataDir,
        maxBytes: config.deadLetterMaxBytes,
        retentionDays: config.deadLetterRetentionDays,
        registry,
        logger,
      })
    : undefined;
  if (deadLetterSink) {
    subscriptions.push(deadLetterSink);
    health.register('deadletters', () => deadLetterSink.ready());
  }

  const instance = newInstanceId();
  const startedAtMs = Date.now();
  const directory = serving ? new MemberDirectory() : undefined;
  let aggregator: Aggregator | undefined;
  let prometheusTargets: PrometheusTargets | undefined;
  let meshConfig: MeshConfig | undefined;
  if (serving || tracing) meshConfig = await meshConfigFor(config, logger);
  if (serving && meshConfig) {
    aggregator = await createAggregator({
      bus,
      registry,
      logger,
      meshConfig,
      clickhouseUrl: config.clickhouseUrl,
      dataDir: config.dataDir,
      rawRetentionDays: config.rawRetentionDays,
      rollupRetentionDays: config.rollupRetentionDays,
      rawRequests: config.rawRequests,
      maxClockSkewMs: config.maxClockSkewMs,
      maxSeries: config.maxSeries,
      canary: config.canary,
      queryTimeoutMs: config.queryTimeoutMs,
    });
    const agg = aggregator;
    health.register('store', () => agg.ready());
  }
  // Its own consumer group: export never holds storage or the receivers' acknowledgements (services/tracer).
  const tracer: Tracer | undefined =
    tracing && meshConfig
      ? await createTracer({
          bus,
          registry,
          logger,
          meshConfig,
          endpoint: config.jaegerEndpoint as string,
          protocol: config.jaegerProtocol,
          sampleRatio: config.traceSampleRatio,
          tuning: opts.tracerTuning,
        })
      : undefined;
  const ingest = ingesting
    ? createIngest({
        bus,
        registry,
        logger,
        ingestToken: config.ingestToken,
        maxBodyBytes: config.maxBodyBytes,
        maxInflightBytes: config.maxInflightBytes,
        bounds: { maxAgeMs: config.rawRetentionDays * DAY_MS, maxAheadMs: config.maxClockSkewMs },
        // In the all-in-one an acknowledgement needs the store (and a rejected line the dead-letter files) too:
        // while either fails, senders get 503 at once rather than waiting for an answer that cannot come.
        ready: () => bus.ready() && (aggregator === undefined || aggregator.ready()) && (deadLetterSink === undefined || deadLetterSink.ready()),
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

  // Beside start-up, never in its way: a slow or absent Grafana delays nothing else.
  const pushAbort = new AbortController();
  let pushed = false;
  let grafanaPush: Promise<GrafanaPushResult | undefined> = Promise.resolve(undefined);
  if (config.grafanaUrl !== undefined && (opts.target === 'provisioner' || opts.target === 'all')) {
    const grafana = redactUrl(config.grafanaUrl);
    // The provisioner exists for this push: it is ready once the dashboards are in Grafana.
    if (opts.target === 'provisioner') health.register('grafana', () => pushed);
    grafanaPush = pushDashboards({ url: config.grafanaUrl, token: config.grafanaToken, signal: pushAbort.signal, ...opts.grafanaTuning }).then(
      (r) => {
        pushed = true;
        logger.info(
          { grafana, folder: r.folder.uid, folderCreated: r.folder.created, created: r.created, updated: r.updated, unchanged: r.unchanged },
          `grafana: ${r.created.length} dashboard(s) created, ${r.updated.length} updated, ${r.unchanged.length} unchanged in folder ${r.folder.uid}`,
        );
        return r;
      },
      (err: unknown) => {
        if (!pushAbort.signal.aborted) logger.error({ grafana }, `grafana: dashboards not pushed: ${(err as Error).message}`);
        return undefined;
      },
    );
  }
  health.markStarted();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const end = Date.now() + Math.max(CLOSE_RESERVE_MS, config.shutdownTimeoutMs - EXIT_MARGIN_MS);
      const drainEnd = end - CLOSE_RESERVE_MS;
      const until = (t: number): number => Math.max(0, t - Date.now());
      const cut: string[] = [];
      /** One stop step, given the time up to `t`; a step that runs out is left behind and named. */
      const step = async (name: string, t: number, p: Promise<unknown>): Promise<void> => {
        if (!(await within(until(t), p))) cut.push(name);
      };
      health.markStopping();
      pushAbort.abort();
      // 1. Intake stops on every receiver at once: new requests get 503 + Retry-After, before any body is read.
      ingest?.intake.close();
      // So the serving process unlists this one before its /metrics goes away.
      await step('membership', drainEnd, membership.stop());
      // 2. What was taken is finished: its records are stored and its senders get their acknowledgement.
      const answered = ingest ? await ingest.intake.idle(until(drainEnd)) : true;
      const drained = await bus.drain(until(drainEnd));
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
      // The reserve: the bus (an insert in flight finishes or is left), then servers, consumers and store.
      await step('bus', end - CLOSE_RESERVE_MS / 2, bus.close());
      const servers: Promise<unknown>[] = [http.close(), ingest?.otlpHttp.close() ?? Promise.resolve(), ingest?.zipkin.close() ?? Promise.resolve()];
      if (ingest) servers.push(new Promise<void>((resolve) => ingest.grpc.tryShutdown(() => resolve())));
      await step('servers', end - CLOSE_RESERVE_MS / 4, Promise.all(servers));
      ingest?.grpc.forceShutdown();
      await step(
        'store',
        end,
        Promise.all([
          // Export is best effort: what the tracer cannot send in the reserve is counted as dropped (`shutdown`).
          tracer?.close(Math.max(0, until(end) - 100)),
          (async () => {
            for (const s of subscriptions) await s.stop();
            await prometheusTargets?.close();
            await aggregator?.close();
          })(),
        ]),
      );
      releaseDataDir();
      if (cut.length > 0) throw new Error(`graceful stop ran out of MESHLENS_SHUTDOWN_TIMEOUT (${config.shutdownTimeoutMs} ms) in: ${cut.join(', ')}`);
    })();
    return closing;
  };
  return { ports, bus, health, registry, aggregator, instance, advertiseAddress: address, prometheusTargets, grafanaPush, close };
}

/** What a started process prints on stdout: its target, bus and store, and the address of every port it serves. */
export function banner(target: Target, config: Config, running: Running): string {
  const { ports } = running;
  const h = config.listenHost;
  const store = running.aggregator
    ? `, ClickHouse ${running.aggregator.conn.kind}: ${running.aggregator.conn.location}`
    : '';
  const lines = [
    // The provisioner reads no bus: it only serves its health and pushes dashboards.
    `meshlens ${target} ready${target === 'provisioner' ? '' : ` (${config.kafkaBrokers.length > 0 ? 'kafka bus' : 'in-memory bus'}${store})`}`,
    `  http        http://${h}:${ports.http}   (${running.aggregator ? '/api/v1/*, ' : ''}${ports.zipkin ? '/v1/accesslogs, /v1/flows, ' : ''}/metrics, /readyz)`,
  ];
  // 0 = the target does not serve that receiver (the aggregator target serves HTTP only).
  if (ports.otlpGrpc) lines.push(`  otlp grpc   ${h}:${ports.otlpGrpc}`);
  if (ports.otlpHttp) lines.push(`  otlp http   http://${h}:${ports.otlpHttp}   (/v1/logs, /v1/traces)`);
  if (ports.zipkin) lines.push(`  zipkin      http://${h}:${ports.zipkin}   (/api/v2/spans)`);
  if (target === 'tracer' || (target === 'all' && config.jaegerEndpoint !== undefined)) {
    lines.push(`  traces to   ${redactUrl(config.jaegerEndpoint ?? '')}   (${config.jaegerProtocol}, sample ratio ${config.traceSampleRatio})`);
  }
  if ((target === 'provisioner' || target === 'all') && config.grafanaUrl !== undefined) {
    lines.push(`  grafana     ${redactUrl(config.grafanaUrl)}   (dashboards pushed in the background; see the log)`);
  }
  return `${lines.join('\n')}\n`;
}
