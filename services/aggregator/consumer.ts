/**
 * The aggregator's consumers: requests, flows and spans from the bus into ClickHouse (raw rows, and the
 * per-minute rollups the writer computes from each batch: lib/store/writer.ts, rollup.ts) and into the Prometheus
 * metrics.
 *
 * Order per delivered batch: insert the raw rows, insert the rollup rows of what was stored, dead-letter what
 * ClickHouse refused for good, update the metrics with it, then resolve (the bus commits, and with the memory
 * bus the receivers answer their callers). A retriable insert failure rejects: the bus redelivers exactly the
 * same batch, and the insert tokens derived from it (`<group>/<topic>/<partition>/<first>-<last>`, `...:rollup`
 * for the rollup rows) let ClickHouse drop whatever the first attempt had stored after all. Metrics only move
 * for rows that were stored, so /metrics and the query API agree.
 *
 * Group commit: a consumer takes whatever waits as soon as its previous insert finished, up to `batchRecords`
 * records, so one insert is in flight per topic and its latency bounds the acknowledgement latency.
 */
import { TOPICS } from '../../lib/bus';
import type { Bus, DeadLetter, DeliveredMessage, Subscription, Topic } from '../../lib/bus';
import { subsetForVersion } from '../../lib/meshconfig';
import type { MeshRequest } from '../../lib/model';
import type { MeshConfig } from '../../lib/meshconfig';
import type { Logger } from '../../lib/runtime';
import type { RecordsResult, RecordTable, RefusedRow, StoredRecord, StoreWriter } from '../../lib/store';
import type { MeshMetrics, StoreMetrics } from './metrics';

export const AGGREGATOR_GROUP = 'meshlens-aggregator';

/** Most records per insert: beyond it the batch closes even when more waits (the rest goes in the next one). */
const DEFAULT_BATCH_RECORDS = 20_000;

/** What the consumers tell readiness about the store: a failing insert makes the process not ready at once. */
export interface StoreHealth {
  insertFailed(err: unknown): void;
  insertSucceeded(): void;
}

export interface ConsumerOptions {
  bus: Bus;
  writer: StoreWriter;
  metrics: MeshMetrics;
  storeMetrics: StoreMetrics;
  meshConfig: MeshConfig;
  logger: Logger;
  health?: StoreHealth;
  /** Most records per insert. Default 20,000. */
  batchRecords?: number;
  /**
   * MESHLENS_RAW_REQUESTS: the share (0–1) of `ok` requests whose raw rows are stored, chosen by request id so
   * both sides of a request go together; `error` and `denied` rows always are. Default 1 (every row).
   */
  rawRequests?: number;
  now?: () => number;
}

/** Subscribes the three consumers; stop them (in any order) to drain. */
export async function startConsumers(opts: ConsumerOptions): Promise<Subscription[]> {
  const batch = { minSize: 1, maxWaitMs: 0, maxSize: opts.batchRecords ?? DEFAULT_BATCH_RECORDS, sizeOf: (v: unknown[]) => v.length };
  /**
   * One consumer: `prepare` the batch, store it (the raw rows `keepRaw` accepts, all without it, and the rollups),
   * then `after` gets the stored records.
   */
  const consume = <K extends RecordTable>(
    topic: Topic<StoredRecord<K>[]>,
    table: K,
    prepare: (records: StoredRecord<K>[]) => StoredRecord<K>[],
    after: (records: StoredRecord<K>[]) => void,
    keepRaw?: (record: StoredRecord<K>) => boolean,
  ) =>
    opts.bus.subscribe(
      topic,
      AGGREGATOR_GROUP,
      async (messages) => {
        const records = prepare(flatten(messages));
        if (records.length === 0) return;
        const token = insertToken(topic.name, messages);
        const result = await store(opts, table, records, token, keepRaw);
        // Durable first: refused rows are kept (with ClickHouse's reason) before the batch commits.
        if (result.refused.length > 0 || result.rollupRefused.length > 0) await deadLetter(opts, [...result.refused, ...result.rollupRefused]);
        after(result.stored);
      },
      { batch },
    );
  const share = opts.rawRequests ?? 1;
  // With no share of ok rows to keep, the hash is not worth computing (it was 2.6 % of bench R1's main thread).
  const keepRaw = share >= 1 ? undefined : share <= 0 ? (r: MeshRequest) => r.outcome !== 'ok' : (r: MeshRequest) => r.outcome !== 'ok' || sampleOf(r) < share;
  return Promise.all([
    consume(
      TOPICS.requests,
      'requests',
      (r) => mapSubsets(r, opts.meshConfig),
      (r) => opts.metrics.addRequests(r),
      keepRaw,
    ),
    consume(TOPICS.flows, 'flows', (f) => f, (f) => opts.metrics.addFlows(f)),
    consume(TOPICS.spans, 'spans', (s) => s, () => undefined),
  ]);
}

/**
 * Where a request falls in [0, 1) for MESHLENS_RAW_REQUESTS: FNV-1a of its request id, so both sidecars' records of
 * it are kept or left out together; a record without one (TCP) by its client address and start time.
 */
function sampleOf(r: MeshRequest): number {
  const id = r.requestId !== '' ? r.requestId : r.sourceAddress;
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  if (r.requestId === '') h = Math.imul(h ^ (r.startTimeMs | 0), 0x01000193);
  return (h >>> 0) / 0x100000000;
}

function flatten<T>(messages: DeliveredMessage<T[]>[]): T[] {
  if (messages.length === 1) return (messages[0] as DeliveredMessage<T[]>).value;
  const out: T[] = [];
  for (const m of messages) for (const r of m.value) out.push(r);
  return out;
}

function insertToken(topic: string, messages: DeliveredMessage<unknown>[]): string {
  const first = messages[0] as DeliveredMessage<unknown>;
  const last = messages[messages.length - 1] as DeliveredMessage<unknown>;
  return `${AGGREGATOR_GROUP}/${topic}/${first.partition}/${first.offset}-${last.offset}`;
}

/** Stores a batch of records: raw rows (those `keepRaw` accepts), rollups and, for requests, the joined view. */
async function store<K extends RecordTable>(
  opts: ConsumerOptions,
  table: K,
  records: StoredRecord<K>[],
  token: string,
  keepRaw?: (record: StoredRecord<K>) => boolean,
): Promise<RecordsResult<StoredRecord<K>>> {
  const end = opts.storeMetrics.insertSeconds.startTimer({ table });
  try {
    const result = await opts.writer.storeRecords(table, records, token, keepRaw);
    opts.health?.insertSucceeded();
    opts.storeMetrics.rows.inc({ table }, result.stored.length);
    if (result.refused.length > 0) opts.storeMetrics.refused.inc({ table }, result.refused.length);
    return result;
  } catch (err) {
    opts.health?.insertFailed(err);
    opts.storeMetrics.failures.inc({ table });
    opts.logger.error({ err, table, rows: records.length, token }, 'ClickHouse insert failed; the batch will be redelivered');
    throw err;
  } finally {
    end();
  }
}

async function deadLetter(opts: ConsumerOptions, refused: RefusedRow[]): Promise<void> {
  const now = (opts.now ?? Date.now)();
  const byTable = new Map<string, DeadLetter[]>();
  for (const r of refused) {
    const letter: DeadLetter = {
      receivedAtMs: now,
      receiver: `store:${r.table}`,
      format: 'unknown',
      reason: 'store_rejected',
      message: `ClickHouse refused this ${r.table} row for good: ${r.error}`,
      line: 0,
      rawBase64: Buffer.from(JSON.stringify(r.row, (_, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v))).toString('base64'),
    };
    const letters = byTable.get(r.table);
    if (letters === undefined) byTable.set(r.table, [letter]);
    else letters.push(letter);
  }
  for (const [table, letters] of byTable) {
    opts.logger.warn({ table, rows: letters.length, error: refused.find((r) => r.table === table)?.error }, 'ClickHouse refused rows for good; they were dead-lettered and the rest of the batch stored');
  }
  await opts.bus.publish(TOPICS.deadLetters, [...byTable].map(([table, value]) => ({ key: `store:${table}`, value })));
}

/**
 * Server-side records of hosts whose mesh config maps version labels to subsets get the subset (CONTRACT.md
 * §4). Bus messages are shared and read-only, so a record that changes is copied.
 */
function mapSubsets(records: MeshRequest[], config: MeshConfig): MeshRequest[] {
  if (config.hosts.size === 0) return records;
  let out: MeshRequest[] | undefined;
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as MeshRequest;
    if (r.destinationSubset !== '' || r.destinationVersion === '') continue;
    const subset = subsetForVersion(config, r.destinationHost, { version: r.destinationVersion });
    if (subset === undefined || subset === '') continue;
    out ??= records.slice();
    out[i] = { ...r, destinationSubset: subset };
  }
  return out ?? records;
}
