/**
 * The aggregator target: consumes the bus into ClickHouse and the Prometheus metrics, and answers the
 * query API. Built without listening (DESIGN.md): the caller passes the HTTP app to register routes on.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Bus, Subscription } from '../../lib/bus';
import type { MeshConfig } from '../../lib/meshconfig';
import { CANARY_DEFAULTS, DAY_MS } from '../../lib/runtime';
import type { CanaryConfig, Logger } from '../../lib/runtime';
import { StoreWriter, classifyStoreError, connect, migrate } from '../../lib/store';
import type { Connection } from '../../lib/store';
import { registerQueryRoutes } from './api';
import { CanaryJudge } from './canary';
import { startConsumers, type StoreHealth } from './consumer';
import { MeshMetrics, StoreMetrics } from './metrics';
import { ConfiguredWeights } from './weights';

export interface AggregatorOptions {
  bus: Bus;
  registry: Registry;
  logger: Logger;
  meshConfig: MeshConfig;
  clickhouseUrl: string | undefined;
  dataDir: string;
  rawRetentionDays: number;
  rollupRetentionDays: number;
  /** How far ahead of now ingest accepts event times; with the raw retention it bounds the days one insert spans. */
  maxClockSkewMs?: number;
  maxSeries: number;
  /** Canary judge settings; default CANARY_DEFAULTS. */
  canary?: CanaryConfig;
  /** Bound on one query-API statement (`max_execution_time`); default 30 s. */
  queryTimeoutMs?: number;
  /** Most records per insert (group commit). Default 20,000. */
  batchRecords?: number;
  /** MESHLENS_RAW_REQUESTS: share (0–1) of `ok` requests stored as raw rows. Default 1. */
  rawRequests?: number;
}

export interface Aggregator {
  conn: Connection;
  metrics: MeshMetrics;
  /** The canary judge; `judgeNow()` refreshes `meshlens_canary_verdict` at once (tests, demo). */
  judge: CanaryJudge;
  registerRoutes(app: FastifyInstance): void;
  /**
   * Readiness: the schema is in place, the consumers run, the store answered its last ping (every 5 s) and the
   * last insert did not fail. In the all-in-one the receivers take nothing while this is false.
   */
  ready(): boolean;
  /** Stops consuming (in-flight batches finish and commit), then closes the store. */
  close(): Promise<void>;
}

const PING_INTERVAL_MS = 5_000;
/** In the data directory: the joined view's records waiting for partners, saved at a graceful stop. */
const PAIRING_FILE = 'pairing.json';
/** In the data directory: hops access logs reported lately and spans waiting for a log, saved at a graceful stop. */
const SPAN_EDGES_FILE = 'span-edges.json';
const MIGRATE_RETRY_INITIAL_MS = 1_000;
const MIGRATE_RETRY_MAX_MS = 30_000;

/**
 * Connects, migrates and starts consuming. Embedded ClickHouse lives in this process: a failure there is fatal
 * and rejects. A server that does not answer yet is waited for: the aggregator comes up not ready (the query
 * API answers 503, the all-in-one's receivers 503 with Retry-After) and retries the migrations with backoff,
 * as a process in a compose stack or a pod must while its database starts. A migration ClickHouse refuses for
 * good (a changed file, bad SQL) rejects at start; found only on a retry, it is logged at fatal level and the
 * process stays not ready (it has nothing to store into).
 */
export async function createAggregator(opts: AggregatorOptions): Promise<Aggregator> {
  const conn = connect({ clickhouseUrl: opts.clickhouseUrl, dataDir: opts.dataDir, requestTimeoutMs: Math.max(60_000, (opts.queryTimeoutMs ?? 0) + 10_000) });
  const retention = { rawDays: opts.rawRetentionDays, rollupDays: opts.rollupRetentionDays };
  const metrics = new MeshMetrics(opts.registry, opts.maxSeries);
  const storeMetrics = new StoreMetrics(opts.registry);
  // The mesh config is read once, at start (bin/start.ts): its weights are published once, here.
  new ConfiguredWeights(opts.registry).set(opts.meshConfig);
  const canary = opts.canary ?? CANARY_DEFAULTS;
  const judge = new CanaryJudge({
    conn,
    meshConfig: opts.meshConfig,
    registry: opts.registry,
    logger: opts.logger,
    config: canary,
    queryTimeoutMs: opts.queryTimeoutMs,
    rawRequests: opts.rawRequests,
  });
  const writer = new StoreWriter(conn, {
    maxPartitionsPerInsert: Math.max(100, opts.rawRetentionDays + Math.ceil((opts.maxClockSkewMs ?? 0) / DAY_MS) + 2),
  });

  let subscriptions: Subscription[] = [];
  let running = false;
  let closed = false;
  let pingOk = true;
  let insertFailing = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let pinger: NodeJS.Timeout | undefined;
  const health: StoreHealth = {
    insertFailed: () => void (insertFailing = true),
    insertSucceeded: () => void (insertFailing = false),
  };

  const pairing = writer.pairing;
  const pairingFile = join(opts.dataDir, PAIRING_FILE);
  const spanEdges = writer.spanEdges;
  const spanEdgesFile = join(opts.dataDir, SPAN_EDGES_FILE);

  const run = async (): Promise<void> => {
    const applied = await migrate(conn, retention);
    opts.logger.info({ store: conn.kind, location: conn.location, applied }, 'ClickHouse schema ready');
    if (closed) return;
    try {
      const waiting = await pairing.load(pairingFile, Date.now());
      if (waiting > 0) opts.logger.info({ waiting, file: pairingFile }, 'joined view: records saved at the last stop wait for their partners again');
    } catch (err) {
      opts.logger.error({ err, file: pairingFile }, 'joined view: cannot read the records saved at the last stop; requests split across the restart count as their sides saw them');
    }
    try {
      const waiting = await spanEdges.load(spanEdgesFile, Date.now());
      if (waiting > 0) opts.logger.info({ waiting, file: spanEdgesFile }, 'span edges: spans saved at the last stop wait for their access logs again');
    } catch (err) {
      opts.logger.error({ err, file: spanEdgesFile }, 'span edges: cannot read the state saved at the last stop; spans whose hop was logged across the restart count as calls only traces saw');
    }
    subscriptions = await startConsumers({
      bus: opts.bus,
      writer,
      metrics,
      storeMetrics,
      meshConfig: opts.meshConfig,
      logger: opts.logger,
      health,
      batchRecords: opts.batchRecords,
      rawRequests: opts.rawRequests,
    });
    judge.start();
    pinger = setInterval(() => {
      void conn.client.ping().then(
        (r) => (pingOk = r.success),
        () => (pingOk = false),
      );
    }, PING_INTERVAL_MS);
    pinger.unref();
    running = true;
  };

  const close = async (): Promise<void> => {
    closed = true;
    clearTimeout(retryTimer);
    clearInterval(pinger);
    await judge.close();
    await Promise.all(subscriptions.map((s) => s.stop()));
    if (running) {
      // Consumers have stopped: what waits matches every committed batch. Saved so a restart pairs across it.
      await pairing.save(pairingFile).catch((err: unknown) => opts.logger.error({ err, file: pairingFile }, 'joined view: cannot save the records waiting for partners'));
      await spanEdges.save(spanEdgesFile).catch((err: unknown) => opts.logger.error({ err, file: spanEdgesFile }, 'span edges: cannot save the logged hops and waiting spans'));
    }
    await conn.client.close();
  };

  try {
    await run();
  } catch (err) {
    if (conn.kind === 'embedded' || !unreachable(err)) {
      await close();
      throw err;
    }
    opts.logger.error({ err: String(err), location: conn.location }, 'ClickHouse does not answer; meshlens stays not ready and retries (check the server, or MESHLENS_CLICKHOUSE_URL)');
    const retry = (delayMs: number): void => {
      retryTimer = setTimeout(() => {
        run().then(
          () => opts.logger.info({ location: conn.location }, 'ClickHouse answers again; meshlens is consuming'),
          (e: unknown) => {
            if (closed) return;
            if (!unreachable(e)) {
              // Not a matter of waiting (e.g. a migration that changed after it was applied): say so, loudly.
              opts.logger.fatal({ err: e }, 'ClickHouse refused the schema migration; fix it and restart');
              return;
            }
            retry(Math.min(delayMs * 2, MIGRATE_RETRY_MAX_MS));
          },
        );
      }, delayMs);
      retryTimer.unref();
    };
    retry(MIGRATE_RETRY_INITIAL_MS);
  }

  return {
    conn,
    metrics,
    judge,
    registerRoutes: (app) =>
      registerQueryRoutes(app, { conn, meshConfig: opts.meshConfig, logger: opts.logger, canary, queryTimeoutMs: opts.queryTimeoutMs, rawRequests: opts.rawRequests }),
    ready: () => running && pingOk && !insertFailing,
    close,
  };
}

/**
 * The server could not be reached (network errors, timeouts: worth waiting for), as opposed to a ClickHouse that
 * answered and refused (it names the error type: bad SQL, a changed migration), which waiting does not fix.
 */
function unreachable(err: unknown): boolean {
  const { type } = classifyStoreError(err);
  return type === 'UNKNOWN' || /^E[A-Z]+$/.test(type);
}
