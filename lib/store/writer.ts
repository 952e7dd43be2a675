/**
 * Inserts batches of records into the raw tables (and through their materialized views into the rollups).
 *
 * Exactly-once over an at-least-once bus: every insert carries an `insert_deduplication_token` derived from
 * what the bus delivered (group, topic, partition, first and last offset). When a batch comes again — the
 * handler failed after ClickHouse had taken it, or the process died before the bus commit — the same token
 * makes ClickHouse drop the repeat in the raw table and, with `deduplicate_blocks_in_dependent_materialized_views`,
 * in every rollup (https://clickhouse.com/docs/guides/developer/deduplicating-inserts-on-retries).
 * Large batches are split into chunks with tokens `<token>:<n>`; the split depends only on the rows, so a
 * redelivery of the same batch produces the same chunks.
 *
 * No poison batch: an insert ClickHouse refuses for good (lib/store/errors.ts) is halved, and each half tried
 * under its own token (`<chunk token>/<from>-<to>`), until the refused rows stand alone. They are returned to
 * the caller (to dead-letter them) and the rest is stored. The halving depends only on the rows, so a
 * redelivery mid-way repeats the same inserts under the same tokens. ClickHouse parses and checks a whole
 * block before writing any of it (for blocks below `max_insert_block_size`), so a refused insert stored nothing.
 * Retriable failures are thrown as `StoreError` for the bus to redeliver the batch.
 */
import type { Connection } from './client';
import { classifyStoreError, StoreError } from './errors';

export type RecordTable = 'requests' | 'flows' | 'spans';

/** ClickHouse likes few large inserts; past this a batch is split so one JSON body stays a sane size. */
export const MAX_ROWS_PER_INSERT = 50_000;

export interface RefusedRow {
  row: object;
  /** ClickHouse's reason, e.g. `CANNOT_PARSE_NUMBER (72): Cannot read floating point value...`. */
  error: string;
}

export interface InsertResult {
  /** Rows ClickHouse has (or had already, under the same token). */
  stored: number;
  /** Rows refused for good, each alone. */
  refused: RefusedRow[];
  inserts: number;
}

export interface StoreWriterOptions {
  /**
   * Daily partitions one insert may touch (`max_partitions_per_insert_block`). Event time is bounded at ingest
   * by the raw retention and the clock skew, so the writer allows every day that bound lets through: a body
   * whose records span many days is inserted like any other (ClickHouse's default of 100 would refuse it).
   */
  maxPartitionsPerInsert: number;
}

export class StoreWriter {
  constructor(
    private readonly conn: Connection,
    private readonly options: StoreWriterOptions = { maxPartitionsPerInsert: 100 },
  ) {}

  /**
   * Inserts `rows` (records with the table's column names, i.e. the lib/model record fields) under `token`.
   * Resolves once ClickHouse has every row it will ever take; rejects with a retriable `StoreError` when the
   * insert should be tried again later (the caller lets the bus redeliver, the tokens keep it from counting twice).
   */
  async insert(table: RecordTable, rows: readonly object[], token: string): Promise<InsertResult> {
    const result: InsertResult = { stored: 0, refused: [], inserts: 0 };
    for (let start = 0; start < rows.length; start += MAX_ROWS_PER_INSERT) {
      const chunk = rows.length <= MAX_ROWS_PER_INSERT ? rows : rows.slice(start, start + MAX_ROWS_PER_INSERT);
      await this.insertOrIsolate(table, chunk, `${token}:${start / MAX_ROWS_PER_INSERT}`, result);
    }
    result.stored = rows.length - result.refused.length;
    return result;
  }

  private async insertOrIsolate(table: RecordTable, rows: readonly object[], token: string, result: InsertResult): Promise<void> {
    try {
      result.inserts++;
      await this.conn.client.insert({
        table: `${this.conn.database}.${table}`,
        values: rows,
        format: 'JSONEachRow',
        clickhouse_settings: {
          insert_deduplicate: 1,
          insert_deduplication_token: token,
          deduplicate_blocks_in_dependent_materialized_views: 1,
          max_partitions_per_insert_block: String(this.options.maxPartitionsPerInsert),
          // Records carry fields the tables do not store (none today, but a newer ingest may add some).
          input_format_skip_unknown_fields: 1,
        },
      });
    } catch (err) {
      const info = classifyStoreError(err);
      const detail = `${info.type}${info.code ? ` (${info.code})` : ''}: ${firstLine(err)}`;
      if (info.retriable) throw new StoreError(`insert into ${table} failed: ${detail}`, info, { cause: err });
      if (rows.length === 1) {
        result.refused.push({ row: rows[0] as object, error: detail });
        return;
      }
      const mid = rows.length >>> 1;
      await this.insertOrIsolate(table, rows.slice(0, mid), `${token}/0-${mid}`, result);
      await this.insertOrIsolate(table, rows.slice(mid), `${token}/${mid}-${rows.length}`, result);
    }
  }
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const nl = message.indexOf('\n');
  return (nl >= 0 ? message.slice(0, nl) : message).slice(0, 500);
}
