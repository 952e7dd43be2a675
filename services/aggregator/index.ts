/**
 * The aggregator target: consumes the bus into ClickHouse and the Prometheus metrics, and answers the
 * query API. Built without listening (DESIGN.md): the caller passes the HTTP app to register routes on.
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Bus, Subscription } from '../../lib/bus';
import type { MeshConfig } from '../../lib/model';
import { CANARY_DEFAULTS } from '../../lib/runtime';
import type { CanaryConfig, Logger } from '../../lib/runtime';
import { StoreWriter, connect, migrate } from '../../lib/store';
import type { Connection } from '../../lib/store';
import { registerQueryRoutes } from './api';
import { CanaryJudge } from './canary';
import { startConsumers } from './consumer';
import { MeshMetrics, StoreMetrics } from './metrics';

export interface AggregatorOptions {
  bus: Bus;
  registry: Registry;
  logger: Logger;
  meshConfig: MeshConfig;
  clickhouseUrl: string | undefined;
  dataDir: string;
  rawRetentionDays: number;
  rollupRetentionDays: number;
  maxSeries: number;
  /** Canary judge settings; default CANARY_DEFAULTS. */
  canary?: CanaryConfig;
  /** Bound on one query-API statement (`max_execution_time`); default 30 s. */
  queryTimeoutMs?: number;
  /** Insert batching (defaults 10,000 records or 1 s); tests shorten the wait. */
  batchRecords?: number;
  batchWaitMs?: number;
}

export interface Aggregator {
  conn: Connection;
  metrics: MeshMetrics;
  /** The canary judge; `judgeNow()` refreshes `meshlens_canary_verdict` at once (tests, demo). */
  judge: CanaryJudge;
  registerRoutes(app: FastifyInstance): void;
  /** Readiness: the store answered its last ping (every 5 s). */
  ready(): boolean;
  /** Stops consuming (in-flight batches finish and commit), then closes the store. */
  close(): Promise<void>;
}

export async function createAggregator(opts: AggregatorOptions): Promise<Aggregator> {
  const conn = connect({ clickhouseUrl: opts.clickhouseUrl, dataDir: opts.dataDir });
  let subscriptions: Subscription[] = [];
  try {
    const applied = await migrate(conn, { rawDays: opts.rawRetentionDays, rollupDays: opts.rollupRetentionDays });
    opts.logger.info({ store: conn.kind, location: conn.location, applied }, 'ClickHouse schema ready');
    const metrics = new MeshMetrics(opts.registry, opts.maxSeries);
    subscriptions = await startConsumers({
      bus: opts.bus,
      writer: new StoreWriter(conn),
      metrics,
      storeMetrics: new StoreMetrics(opts.registry),
      meshConfig: opts.meshConfig,
      logger: opts.logger,
      batchRecords: opts.batchRecords,
      batchWaitMs: opts.batchWaitMs,
    });
    const canary = opts.canary ?? CANARY_DEFAULTS;
    const judge = new CanaryJudge({ conn, meshConfig: opts.meshConfig, registry: opts.registry, logger: opts.logger, config: canary });
    judge.start();
    let storeUp = true;
    const pinger = setInterval(() => {
      void conn.client.ping().then(
        (r) => (storeUp = r.success),
        () => (storeUp = false),
      );
    }, 5_000);
    pinger.unref();
    return {
      conn,
      metrics,
      judge,
      registerRoutes: (app) => registerQueryRoutes(app, { conn, meshConfig: opts.meshConfig, logger: opts.logger, canary, queryTimeoutMs: opts.queryTimeoutMs }),
      ready: () => storeUp,
      close: async () => {
        clearInterval(pinger);
        await judge.close();
        await Promise.all(subscriptions.map((s) => s.stop()));
        await conn.client.close();
      },
    };
  } catch (err) {
    await Promise.all(subscriptions.map((s) => s.stop()));
    await conn.client.close();
    throw err;
  }
}

export { DEFAULT_WINDOW_MS, foldLedger, parseInstant, parseScope } from './api';
export { AGGREGATOR_GROUP } from './consumer';
export { FALSE_FAIL_RATE, LATENCY_RATIO, PASS_CONFIDENCE, canaryPairs, judgeCanaries, ratioCheck } from './canary';
export type { CanaryResult, JudgeOptions, Verdict } from './canary';
export { DURATION_BUCKETS_SECONDS, MeshMetrics } from './metrics';
export { OVERFLOW } from './series';
