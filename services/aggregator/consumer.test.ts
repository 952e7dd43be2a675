/**
 * Replay through the real consumer: ClickHouse takes a batch, then the handler fails before the bus
 * commit (what a crash or a timed-out insert looks like). The bus redelivers the same batch; the insert
 * token makes ClickHouse drop the repeat, in the raw table and in the rollups, and the metrics move once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { TOPICS, createMemoryBus } from '../../lib/bus';
import type { Bus, DeadLetter, Subscription } from '../../lib/bus';
import { emptyRequest } from '../../lib/model';
import { emptyMeshConfig } from '../../lib/meshconfig';
import type { MeshRequest } from '../../lib/model';
import { StoreWriter, connect, migrate } from '../../lib/store';
import type { Connection, StoredTable } from '../../lib/store';
import { startConsumers } from './consumer';
import { MeshMetrics, StoreMetrics } from './metrics';

const T0 = Date.UTC(2026, 10, 25, 9, 0, 0);

/** A writer whose second insert (the first batch's rollup rows, after its raw rows) reaches ClickHouse and then reports failure. */
class LosesFirstAck extends StoreWriter {
  calls = 0;
  override async insert(table: StoredTable, rows: readonly object[], token: string) {
    const stats = await super.insert(table, rows, token);
    if (this.calls++ === 1) throw new Error('connection reset after the insert was applied');
    return stats;
  }
}

describe('aggregator consumer replay', () => {
  let dir: string;
  let conn: Connection;
  let bus: Bus;
  let subs: Subscription[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshlens-replay-'));
    conn = connect({ clickhouseUrl: undefined, dataDir: dir });
    await migrate(conn, { rawDays: 3650, rollupDays: 3650 });
  });
  afterAll(async () => {
    for (const s of subs) await s.stop();
    await bus?.close();
    await conn.client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts a batch delivered twice once in raw rows, rollups and metrics', async () => {
    bus = createMemoryBus({ retryInitialMs: 20 });
    const registry = new Registry();
    const metrics = new MeshMetrics(registry, 1000);
    const writer = new LosesFirstAck(conn);
    subs = await startConsumers({
      bus,
      writer,
      metrics,
      storeMetrics: new StoreMetrics(registry),
      meshConfig: emptyMeshConfig(),
      logger: pino({ level: 'silent' }),
      batchRecords: 1_000_000,
    });
    const records: MeshRequest[] = Array.from({ length: 1200 }, (_, i) => ({
      ...emptyRequest(),
      startTimeMs: T0 + i * 100,
      reporter: 'source',
      sourceWorkload: 'productpage-v1',
      sourceNamespace: 'default',
      destinationHost: 'reviews.default.svc.cluster.local',
      destinationService: 'reviews',
      destinationNamespace: 'default',
      destinationSubset: i % 4 === 0 ? 'v2' : 'v1',
      responseCode: 200,
      outcome: 'ok',
      requestId: `replay-${i}`,
    }));
    // Answered only once stored: the first attempt's lost ack and the redelivery happen inside this await.
    await bus.publish(TOPICS.requests, [
      { key: 'reviews.default.svc.cluster.local', value: records.slice(0, 500) },
      { key: 'reviews.default.svc.cluster.local', value: records.slice(500) },
    ]);
    const stored = async () => {
      const text = await registry.metrics();
      return Number(/meshlens_store_rows_total\{table="requests"\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    const deadline = Date.now() + 10_000;
    while ((await stored()) < 1200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));

    // Raw and rollup rows of the attempt whose ack was lost, and again of the redelivery: one rollup insert a batch.
    expect(writer.calls).toBe(4);
    const one = async (sql: string) => Number(Object.values(((await (await conn.client.query({ query: sql, format: 'JSONEachRow' })).json()) as Record<string, number>[])[0] ?? {})[0]);
    expect(await one(`SELECT count() FROM ${conn.database}.requests`)).toBe(1200);
    expect(await one(`SELECT sum(requests) FROM ${conn.database}.requests_rollup_1m WHERE reporter = 'source'`)).toBe(1200);
    expect(await one(`SELECT sum(requests) FROM ${conn.database}.requests_rollup_1m WHERE reporter = 'source' AND destinationSubset = 'v2'`)).toBe(300);
    expect(await one(`SELECT sum(requests) FROM ${conn.database}.requests_rollup_1m WHERE reporter = 'all'`)).toBe(1200);
    const text = await registry.metrics();
    const total = [...text.matchAll(/^meshlens_requests_total\{.*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(total).toBe(1200);
    expect(text).toContain('meshlens_store_insert_failures_total{table="requests"} 1');
  });

  it('stores the rest of a batch ClickHouse refuses rows of, dead-letters those rows, and counts only what was stored', async () => {
    for (const s of subs) await s.stop();
    await bus?.close();
    await conn.client.command({ query: `TRUNCATE TABLE ${conn.database}.requests` });
    await conn.client.command({ query: `TRUNCATE TABLE ${conn.database}.requests_rollup_1m` });
    bus = createMemoryBus({ retryInitialMs: 20 });
    const registry = new Registry();
    const metrics = new MeshMetrics(registry, 1000);
    const health = { failed: 0, succeeded: 0, insertFailed: () => void health.failed++, insertSucceeded: () => void health.succeeded++ };
    subs = await startConsumers({
      bus,
      writer: new StoreWriter(conn),
      metrics,
      storeMetrics: new StoreMetrics(registry),
      meshConfig: emptyMeshConfig(),
      logger: pino({ level: 'silent' }),
      health,
    });
    const letters: DeadLetter[] = [];
    subs.push(await bus.subscribe(TOPICS.deadLetters, 'test-deadletters', async (batch) => void letters.push(...batch.flatMap((m) => m.value))));
    const records: MeshRequest[] = Array.from({ length: 40 }, (_, i) => ({
      ...emptyRequest(),
      startTimeMs: T0 + i,
      reporter: 'source',
      destinationHost: 'reviews.default.svc.cluster.local',
      destinationService: 'reviews',
      destinationNamespace: 'default',
      responseCode: 200,
      requestId: `poison-${i}`,
      // A row no ingest parser makes: ClickHouse refuses it every time, and retrying would wedge the topic.
      ...(i === 7 ? { durationMs: 'NaN ms' as unknown as number } : {}),
    }));
    await bus.publish(TOPICS.requests, [{ key: 'reviews.default.svc.cluster.local', value: records }]);

    const one = async (sql: string) => Number(Object.values(((await (await conn.client.query({ query: sql, format: 'JSONEachRow' })).json()) as Record<string, number>[])[0] ?? {})[0]);
    expect(await one(`SELECT count() FROM ${conn.database}.requests`)).toBe(39);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ receiver: 'store:requests', reason: 'store_rejected' });
    expect(letters[0]?.message).toMatch(/durationMs/);
    expect(JSON.parse(Buffer.from(letters[0]?.rawBase64 ?? '', 'base64').toString('utf8'))).toMatchObject({ requestId: 'poison-7' });
    const text = await registry.metrics();
    const total = [...text.matchAll(/^meshlens_requests_total\{.*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(total).toBe(39);
    expect(text).toContain('meshlens_store_refused_rows_total{table="requests"} 1');
    expect(text).toContain('meshlens_store_rows_total{table="requests"} 39');
    expect(health).toMatchObject({ failed: 0, succeeded: 1 });
  });

  it.each([0, 0.5])(
    'keeps the raw rows MESHLENS_RAW_REQUESTS=%s asks for: errors and denials always, ok requests by request id with both sides together; rollups count all',
    async (share) => {
      for (const s of subs) await s.stop();
      await bus?.close();
      for (const t of ['requests', 'requests_rollup_1m']) await conn.client.command({ query: `TRUNCATE TABLE ${conn.database}.${t}` });
      bus = createMemoryBus({ retryInitialMs: 20 });
      const registry = new Registry();
      subs = await startConsumers({
        bus,
        writer: new StoreWriter(conn),
        metrics: new MeshMetrics(registry, 1000),
        storeMetrics: new StoreMetrics(registry),
        meshConfig: emptyMeshConfig(),
        logger: pino({ level: 'silent' }),
        rawRequests: share,
      });
      const outcomes = ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'error', 'denied', 'ok'] as const;
      // 1,000 requests, each logged by both sidecars.
      const records: MeshRequest[] = Array.from({ length: 1000 }, (_, i) =>
        (['source', 'destination'] as const).map((reporter) => ({
          ...emptyRequest(),
          startTimeMs: T0 + i * 10,
          reporter,
          requestId: `sampled-${i}`,
          destinationHost: 'reviews.default.svc.cluster.local',
          destinationService: 'reviews',
          destinationNamespace: 'default',
          responseCode: 200,
          outcome: outcomes[i % outcomes.length] as MeshRequest['outcome'],
        })),
      ).flat();
      await bus.publish(TOPICS.requests, [{ key: 'reviews', value: records }]);

      const rows = async (sql: string) => (await (await conn.client.query({ query: sql, format: 'JSONEachRow' })).json()) as Record<string, number>[];
      const [raw] = await rows(
        `SELECT count() AS n, countIf(outcome != 'ok') AS failed, uniqExact(requestId) AS ids FROM ${conn.database}.requests`,
      );
      const [sides] = await rows(`SELECT countIf(c != 2) AS halves FROM (SELECT requestId, count() AS c FROM ${conn.database}.requests GROUP BY requestId)`);
      const [rollup] = await rows(`SELECT sum(requests) AS n FROM ${conn.database}.requests_rollup_1m WHERE reporter != 'all'`);
      const [joined] = await rows(`SELECT sum(requests) AS n FROM ${conn.database}.requests_rollup_1m WHERE reporter = 'all'`);
      const [ledger] = await rows(
        `SELECT sumIf(requests, reporter != 'all') AS sides, sumIf(requests, reporter = 'all') AS joined, sumIf(requests, reporter = 'all' AND outcome = 'denied') AS denied
        FROM ${conn.database}.requests_rollup_1m WHERE outcome != ''`,
      );
      expect(raw?.failed).toBe(400); // 100 error and 100 denied requests, both sides of each
      expect(sides?.halves).toBe(0);
      if (share === 0) expect(raw?.n).toBe(400);
      else {
        // About half of the 800 ok requests, chosen by their ids.
        expect(raw?.ids).toBeGreaterThan(200 + 300);
        expect(raw?.ids).toBeLessThan(200 + 500);
      }
      expect([rollup?.n, joined?.n]).toEqual([2000, 1000]);
      expect(ledger).toEqual({ sides: 2000, joined: 1000, denied: 100 });
    },
  );
});
