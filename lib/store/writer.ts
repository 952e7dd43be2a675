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
 */
import type { Connection } from './client';

export type RecordTable = 'requests' | 'flows' | 'spans';

/** ClickHouse likes few large inserts; past this a batch is split so one JSON body stays a sane size. */
export const MAX_ROWS_PER_INSERT = 50_000;

export interface InsertStats {
  rows: number;
  inserts: number;
}

export class StoreWriter {
  constructor(private readonly conn: Connection) {}

  /**
   * Inserts `rows` (records with the table's column names, i.e. the lib/model record fields) under `token`.
   * Resolves when ClickHouse has them; rejects with the ClickHouse error otherwise (the caller lets the bus
   * redeliver, and the token keeps the retry from counting twice).
   */
  async insert(table: RecordTable, rows: readonly object[], token: string): Promise<InsertStats> {
    let inserts = 0;
    for (let start = 0; start < rows.length; start += MAX_ROWS_PER_INSERT) {
      const chunk = rows.length <= MAX_ROWS_PER_INSERT ? rows : rows.slice(start, start + MAX_ROWS_PER_INSERT);
      await this.conn.client.insert({
        table: `${this.conn.database}.${table}`,
        values: chunk,
        format: 'JSONEachRow',
        clickhouse_settings: {
          insert_deduplicate: 1,
          insert_deduplication_token: `${token}:${start / MAX_ROWS_PER_INSERT}`,
          deduplicate_blocks_in_dependent_materialized_views: 1,
          // Records carry fields the tables do not store (none today, but a newer ingest may add some).
          input_format_skip_unknown_fields: 1,
        },
      });
      inserts++;
    }
    return { rows: rows.length, inserts };
  }
}
