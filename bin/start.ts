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

/** A component a target runs always (`required`, its setting must be set), when configured (`optional`), or never. */
export type Need = 'required' | 'optional' | 'off';

/** What one target runs. */
export interface Components {
  /** The receivers (OTLP gRPC/HTTP, Zipkin, access-log and flow lines), publishing records to the bus. */
  ingest: boolean;
  /** Consumers into the store, the query API, Prometheus targets and the member directory. */
  aggregator: boolean;
  /** Spans from the bus to Jaeger; its setting is MESHLENS_JAEGER_ENDPOINT. */
  tracer: Need;
  /** The dashboards pushed to Grafana; its setting is MESHLENS_GRAFANA_URL. `required`: ready once pushed. */
  grafanaPush: Need;
  /**
   * What the target does with records on the bus: `none` needs no Kafka, data directory or dead letters (only
   * heartbeats travel on its bus). A split target must share Kafka with the others.
   */
  records: 'publish' | 'consume' | 'both' | 'none';
  /** Runs on a process-private memory bus when no Kafka is configured (only the all-in-one has every component). */
  privateBus: boolean;
}

/** From target to the components it runs: the one place `start()` and `banner()` decide the mode. */
export const COMPONENTS: Readonly<Record<Target, Readonly<Components>>> = {
  all: { ingest: true, aggregator: true, tracer: 'optional', grafanaPush: 'optional', records: 'both', privateBus: true },
  ingest: { ingest: true, aggregator: false, tracer: 'off', grafanaPush: 'off', records: 'publish', privateBus: false },
  aggregator: { ingest: false, aggregator: true, tracer: 'off', grafanaPush: 'off', records: 'consume', privateBus: false },
  tracer: { ingest: false, aggregator: false, tracer: 'required', grafanaPush: 'off', records: 'consume', privateBus: false },
  provisioner: { ingest: false, aggregator: false, tracer: 'off', grafanaPush: 'required', records: 'none', privateBus: false },
};

/** Whether a component runs: always when required (the start checked its setting), else when its setting is set. */
function runs(need: Need, configured: boolean): boolean {
  return need === 'required' || (need === 'optional' && configured);
}

/** A required component's missing setting, as the one line the CLI prints (issue 13: name what to change). */
const REQUIRED_SETTING: Readonly<Record<'tracer' | 'grafanaPush', (c: Config) => string | undefined>> = {
  tracer: (c) =>
    c.jaegerEndpoint === undefined
      ? 'MESHLENS_JAEGER_ENDPOINT is not set: the tracer target exports spans to it; set it to an OTLP/HTTP base URL such as http://jaeger:4318'
      : undefined,
  grafanaPush: (c) =>
    c.grafanaUrl === undefined
      ? 'MESHLENS_GRAFANA_URL is not set: the provisioner target pushes the dashboards to it; set it (and MESHLENS_GRAFANA_TOKEN) to your Grafana, such as http://grafana:3000'
      : undefined,
};

/**
 * How a graceful stop spends MESHLENS_SHUTDOWN_TIMEOUT: the requests already taken and the bus get all of it
 * but CLOSE_RESERVE_MS; closing the bus, the servers, the consumers and the store get that reserve; and the
 * whole plan ends EXIT_MARGIN_MS before the CLI's forced exit, so the process exits on its own account.
 */
const CLOSE_RESERVE_MS = 1_500;
const EXIT_MARGIN_MS = 300;
/** Each undo step of a failed start gets this long: the start failed, the process is about to exit anyway. */
const UNDO_STEP_MS = 3_000;

/**
 * One step of a graceful stop. The steps run in order (`stopSteps()` in `start()`); each gets the time up to its
 * deadline, `beforeEndMs` before the plan's end. A step that runs out is left behind and named in the error.
 */
export type StopStepName = 'intake' | 'membership' | 'drain' | 'bus' | 'servers' | 'store' | 'data dir';
interface StopStep {
  name: StopStepName;
  /** The step's deadline, this long before the plan's end: the drain ends where the reserve starts. */
  beforeEndMs: number;
  /** Runs the step; `left()` is the time up to its deadline. False: it ran out of time. */
  run(left: () => number): Promise<boolean>;
}
/** The drain gets all but the reserve; then the bus, the servers and the consumers and store share it. */
const DEADLINE = { drain: CLOSE_RESERVE_MS, bus: CLOSE_RESERVE_MS / 2, servers: CLOSE_RESERVE_MS / 4, end: 0 } as const;

/** Runs the steps in order within `shutdownTimeoutMs`; rejects naming every step that ran out, after running all. */
async function runStopSteps(steps: readonly StopStep[], shutdownTimeoutMs: number): Promise<void> {
  const end = Date.now() + Math.max(CLOSE_RESERVE_MS, shutdownTimeoutMs - EXIT_MARGIN_MS);
  const cut: StopStepName[] = [];
  for (const step of steps) {
    const deadline = end - step.beforeEndMs;
    if (!(await step.run(() => Math.max(0, deadline - Date.now())))) cut.push(step.name);
  }
  if (cut.length > 0) throw new Error(`graceful stop ran out of MESHLENS_SHUTDOWN_TIMEOUT (${shutdownTimeoutMs} ms) in: ${cut.join(', ')}`);
}

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
  const components = COMPONENTS[opts.target];
  for (const need of ['tracer', 'grafanaPush'] as const) {
    const missing = components[need] === 'required' ? REQUIRED_SETTING[need](config) : undefined;
    if (missing !== undefined) throw new StartError(missing);
  }
  const serving = components.aggregator;
  const ingesting = components.ingest;
  // The all-in-one exports spans only when told where; the tracer target exists for nothing else.
  const tracing = runs(components.tracer, config.jaegerEndpoint !== undefined);
  const pushing = runs(components.grafanaPush, config.grafanaUrl !== undefined);
  const pipeline = components.records !== 'none';
  const memoryBus = opts.bus === undefined && config.kafkaBrokers.length === 0;
  // Nothing silent (CONTRACT.md §1): a split target on a process-private bus would publish to nobody, or consume nothing.
  if (memoryBus && pipeline && !components.privateBus) {
    const role = components.records === 'publish' ? 'publishes every record to Kafka' : 'consumes its records from Kafka';
    throw new ConfigError([`MESHLENS_KAFKA_BROKERS is not set: the ${opts.target} target ${role}; set it, or run the all-in-one (meshlens all)`]);
  }

  // The data dir holds the embedded ClickHouse and the all-in-one's dead letters: one process at a time.
  const releaseDataDir = (memoryBus && pipeline) || (serving && config.clickhouseUrl === undefined) ? claimDataDir(config.dataDir) : () => undefined;
  // What start() has opened so far, undone in reverse when a later step fails (a port taken, Kafka unreachable): an
  // embedded ClickHouse still open when the process exits can crash or hang that exit.
  const undo: (() => unknown)[] = [releaseDataDir];
  try {

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
    undo.push(() => bus.close());
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
      undo.push(() => deadLetterSink.stop());
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
      undo.push(() => agg.close());
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
    if (tracer) undo.push(() => tracer.close(0));
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
      undo.push(() => app.close());
      return (app.server.address() as AddressInfo).port;
    };
    // The aggregator target serves only HTTP (query API, /metrics, health); 0 = that receiver is not served.
    const ports: Ports = {
      http: await listen(http, config.httpPort),
      otlpHttp: ingest ? await listen(ingest.otlpHttp, config.otlpHttpPort) : 0,
      zipkin: ingest ? await listen(ingest.zipkin, config.zipkinPort) : 0,
      otlpGrpc: ingest ? await bindGrpc(ingest.grpc, host, config.otlpGrpcPort) : 0,
    };
    if (ingest) undo.push(() => ingest.grpc.forceShutdown());
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
    undo.push(() => membership.stop());
    await prometheusTargets?.start();
    if (prometheusTargets) {
      const targets = prometheusTargets;
      undo.push(() => targets.close());
    }

    // Beside start-up, never in its way: a slow or absent Grafana delays nothing else.
    const pushAbort = new AbortController();
    let pushed = false;
    let grafanaPush: Promise<GrafanaPushResult | undefined> = Promise.resolve(undefined);
    if (pushing && config.grafanaUrl !== undefined) {
      const grafana = redactUrl(config.grafanaUrl);
      // The provisioner exists for this push: it is ready once the dashboards are in Grafana.
      if (components.grafanaPush === 'required') health.register('grafana', () => pushed);
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

    // The graceful stop, in order: intake, membership, drain, then the reserve for bus, servers, store, data dir.
    const stopSteps: readonly StopStep[] = [
      {
        // New requests get 503 + Retry-After on every receiver at once, before any body is read.
        name: 'intake',
        beforeEndMs: DEADLINE.drain,
        run: () => {
          health.markStopping();
          pushAbort.abort();
          ingest?.intake.close();
          return Promise.resolve(true);
        },
      },
      // So the serving process unlists this one before its /metrics goes away.
      { name: 'membership', beforeEndMs: DEADLINE.drain, run: (left) => within(left(), membership.stop()) },
      {
        // What was taken is finished: its records are stored and its senders get their acknowledgement. Anything
        // left is counted and logged (not a cut: closing the bus answers its senders 503 (memory) or leaves it in Kafka).
        name: 'drain',
        beforeEndMs: DEADLINE.drain,
        run: async (left) => {
          const answered = ingest ? await ingest.intake.idle(left()) : true;
          const drained = await bus.drain(left());
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
          return true;
        },
      },
      // The reserve: the bus (an insert in flight finishes or is left), then servers, consumers and store.
      { name: 'bus', beforeEndMs: DEADLINE.bus, run: (left) => within(left(), bus.close()) },
      {
        name: 'servers',
        beforeEndMs: DEADLINE.servers,
        run: async (left) => {
          const servers: Promise<unknown>[] = [http.close(), ingest?.otlpHttp.close() ?? Promise.resolve(), ingest?.zipkin.close() ?? Promise.resolve()];
          if (ingest) servers.push(new Promise<void>((resolve) => ingest.grpc.tryShutdown(() => resolve())));
          const ok = await within(left(), Promise.all(servers));
          ingest?.grpc.forceShutdown();
          return ok;
        },
      },
      {
        name: 'store',
        beforeEndMs: DEADLINE.end,
        run: (left) =>
          within(
            left(),
            Promise.all([
              // Export is best effort: what the tracer cannot send in the reserve is counted as dropped (`shutdown`).
              tracer?.close(Math.max(0, left() - 100)),
              (async () => {
                for (const s of subscriptions) await s.stop();
                await prometheusTargets?.close();
                await aggregator?.close();
              })(),
            ]),
          ),
      },
      {
        name: 'data dir',
        beforeEndMs: DEADLINE.end,
        run: () => {
          releaseDataDir();
          return Promise.resolve(true);
        },
      },
    ];
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => (closing ??= runStopSteps(stopSteps, config.shutdownTimeoutMs));
    return { ports, bus, health, registry, aggregator, instance, advertiseAddress: address, prometheusTargets, grafanaPush, close };
  } catch (err) {
    for (const u of undo.reverse()) await within(UNDO_STEP_MS, Promise.resolve().then(u));
    throw err;
  }
}

/** What a started process prints on stdout: its target, bus and store, and the address of every port it serves. */
export function banner(target: Target, config: Config, running: Running): string {
  const { ports } = running;
  const components = COMPONENTS[target];
  const h = config.listenHost;
  const store = running.aggregator
    ? `, ClickHouse ${running.aggregator.conn.kind}: ${running.aggregator.conn.location}`
    : '';
  const lines = [
    // A target without records (the provisioner) reads no bus: it only serves its health and pushes dashboards.
    `meshlens ${target} ready${components.records === 'none' ? '' : ` (${config.kafkaBrokers.length > 0 ? 'kafka bus' : 'in-memory bus'}${store})`}`,
    `  http        http://${h}:${ports.http}   (${running.aggregator ? '/api/v1/*, ' : ''}${ports.zipkin ? '/v1/accesslogs, /v1/flows, ' : ''}/metrics, /readyz)`,
  ];
  // 0 = the target does not serve that receiver (the aggregator target serves HTTP only).
  if (ports.otlpGrpc) lines.push(`  otlp grpc   ${h}:${ports.otlpGrpc}`);
  if (ports.otlpHttp) lines.push(`  otlp http   http://${h}:${ports.otlpHttp}   (/v1/logs, /v1/traces)`);
  if (ports.zipkin) lines.push(`  zipkin      http://${h}:${ports.zipkin}   (/api/v2/spans)`);
  if (runs(components.tracer, config.jaegerEndpoint !== undefined)) {
    lines.push(`  traces to   ${redactUrl(config.jaegerEndpoint ?? '')}   (${config.jaegerProtocol}, sample ratio ${config.traceSampleRatio})`);
  }
  if (runs(components.grafanaPush, config.grafanaUrl !== undefined) && config.grafanaUrl !== undefined) {
    lines.push(`  grafana     ${redactUrl(config.grafanaUrl)}   (dashboards pushed in the background; see the log)`);
  }
  return `${lines.join('\n')}\n`;
}
