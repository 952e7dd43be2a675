/**
 * The aggregator's consumers: requests, flows and spans from the bus into ClickHouse (raw rows, and through
 * the materialized views the per-minute rollups) and into the Prometheus metrics.
 *
 * Order per delivered batch: insert, then update the metrics, then resolve (the bus commits). A failed
 * insert rejects, the bus redelivers exactly the same batch, and the insert token derived from it
 * (`<group>/<topic>/<partition>/<first>-<last>`) lets ClickHouse drop the repeat if the first attempt had
 * landed after all. Metrics only move for batches that were stored, so /metrics and the query API agree.
 */
import { TOPICS } from '../../lib/bus';
import type { Bus, DeliveredMessage, Subscription, Topic } from '../../lib/bus';
import { subsetForVersion } from '../../lib/model';
import type { Flow, MeshConfig, MeshRequest, Span } from '../../lib/model';
import type { Logger } from '../../lib/runtime';
import type { RecordTable, StoreWriter } from '../../lib/store';
import type { MeshMetrics, StoreMetrics } from './metrics';

export const AGGREGATOR_GROUP = 'meshlens-aggregator';

export interface ConsumerOptions {
  bus: Bus;
  writer: StoreWriter;
  metrics: MeshMetrics;
  storeMetrics: StoreMetrics;
  meshConfig: MeshConfig;
  logger: Logger;
  /** Records per insert the consumer waits for (ClickHouse prefers few large inserts). Default 10,000. */
  batchRecords?: number;
  /** Longest wait for `batchRecords` before inserting what arrived. Default 1,000 ms. */
  batchWaitMs?: number;
}

/** Subscribes the three consumers; stop them (in any order) to drain. */
export async function startConsumers(opts: ConsumerOptions): Promise<Subscription[]> {
  const batch = { minSize: opts.batchRecords ?? 10_000, maxWaitMs: opts.batchWaitMs ?? 1_000, sizeOf: (v: unknown[]) => v.length };
  const consume = <T extends object>(topic: Topic<T[]>, table: RecordTable, prepare: (records: T[]) => T[], after: (records: T[]) => void) =>
    opts.bus.subscribe(
      topic,
      AGGREGATOR_GROUP,
      async (messages) => {
        const records = prepare(flatten(messages));
        if (records.length > 0) {
          await store(opts, table, records, insertToken(topic.name, messages));
          after(records);
        }
      },
      { batch },
    );
  return Promise.all([
    consume<MeshRequest>(TOPICS.requests, 'requests', (r) => mapSubsets(r, opts.meshConfig), (r) => opts.metrics.addRequests(r)),
    consume<Flow>(TOPICS.flows, 'flows', (f) => f, (f) => opts.metrics.addFlows(f)),
    consume<Span>(TOPICS.spans, 'spans', (s) => s, () => undefined),
  ]);
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

async function store(opts: ConsumerOptions, table: RecordTable, rows: object[], token: string): Promise<void> {
  const end = opts.storeMetrics.insertSeconds.startTimer({ table });
  try {
    await opts.writer.insert(table, rows, token);
  } catch (err) {
    opts.storeMetrics.failures.inc({ table });
    opts.logger.error({ err, table, rows: rows.length, token }, 'ClickHouse insert failed; the batch will be redelivered');
    throw err;
  } finally {
    end();
  }
  opts.storeMetrics.rows.inc({ table }, rows.length);
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
