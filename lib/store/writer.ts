/**
 * Inserts batches of records: raw rows into the raw tables and, computed here from the same batch, the
 * per-minute rollup rows (lib/store/rollup.ts). Every insert is one ClickHouse Native block (lib/store/native.ts).
 *
 * Exactly-once over an at-least-once bus: every insert carries an `insert_deduplication_token` derived from
 * what the bus delivered (group, topic, partition, first and last offset; `:rollup` for the rollup rows). When a
 * batch comes again — the handler failed after ClickHouse had taken it, or the process died before the bus
 * commit — the same tokens make ClickHouse drop the repeats (non_replicated_deduplication_window on every table;
 * https://clickhouse.com/docs/guides/developer/deduplicating-inserts-on-retries). Large batches are split into
 * chunks with tokens `<token>:<n>`; the split depends only on the rows, so a redelivery of the same batch
 * produces the same chunks.
 *
 * No poison batch: a row a column cannot hold (a string for a number, a port past 65535) is refused by the
 * encoder before any insert. An insert ClickHouse refuses for good (lib/store/errors.ts) is halved, and each
 * half tried under its own token (`<chunk token>/<from>-<to>`), until the refused rows stand alone. Refused rows
 * are returned to the caller (to dead-letter them) and the rest is stored. Both steps depend only on the rows, so
 * a redelivery mid-way repeats the same inserts under the same tokens. ClickHouse checks a whole block before
 * writing any of it, so a refused insert stored nothing. Retriable failures are thrown as `StoreError` for the
 * bus to redeliver the batch.
 */
import type { Connection } from './client';
import { classifyStoreError, StoreError } from './errors';
import { encodeNativeBlock, EncodeError } from './native';
import { Pairing } from './pairing';
import { contributionOf, requestRollupOf, rollUpFlows } from './rollup';
import { SpanEdges } from './spanedges';
import { TABLE_COLUMNS, type StoredTable } from './tables';
import type { Flow, MeshRequest, Span } from '../model';

export type RecordTable = 'requests' | 'flows' | 'spans';

/** ClickHouse likes few large inserts; past this a batch is split so one block stays a sane size. */
export const MAX_ROWS_PER_INSERT = 50_000;

export interface RefusedRow {
  /** The table it was meant for. */
  table: StoredTable;
  row: object;
  /** Why: ClickHouse's reason (e.g. `TOO_MANY_PARTS (252): ...`), or the encoder's for a value no column holds. */
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

/** What `storeRecords` did with a batch of records. */
export interface RecordsResult<T> {
  /** The records stored: counted in the rollups, and in the raw table unless left out of it. */
  stored: T[];
  /** Records refused for good, each alone, with the reason. */
  refused: RefusedRow[];
  /** Rollup rows refused for good (none is expected: they are built from stored records); logged and dead-lettered by the caller. */
  rollupRefused: RefusedRow[];
}

interface RecordTypes {
  requests: MeshRequest;
  flows: Flow;
  spans: Span;
}

/** The record type a raw table stores. */
export type StoredRecord<K extends RecordTable> = RecordTypes[K];

export class StoreWriter {
  /** The joined view's records waiting for their partners (lib/store/pairing.ts); saved and loaded by the owner. */
  readonly pairing = new Pairing();
  /** Logged hops and spans waiting for a log of theirs (lib/store/spanedges.ts); saved and loaded by the owner. */
  readonly spanEdges = new SpanEdges();

  constructor(
    private readonly conn: Connection,
    private readonly options: StoreWriterOptions = { maxPartitionsPerInsert: 100 },
  ) {}

  /**
   * A batch of records of one kind under the batch's `token`: raw rows into `table` (those `keepRaw` accepts, all
   * when it is not given), then the per-minute rows derived from every stored record, each under a token of its own
   * derived from the batch's: for requests the take-backs of spans waiting for a log of these hops (span_edges_1m,
   * `<token>:spans`, only when such spans wait; lib/store/spanedges.ts), then one insert of requests_rollup_1m
   * (`<token>:rollup`) with the RED counts and the ledger per reporter and the joined view's rows
   * (lib/store/pairing.ts); for flows flows_1m; for spans the calls only traces saw (span_edges_1m,
   * `<token>:rollup`). A retried batch repeats the inserts under the same tokens, and ClickHouse drops what it has.
   */
  async storeRecords<K extends RecordTable>(
    table: K,
    records: readonly RecordTypes[K][],
    token: string,
    keepRaw?: (record: RecordTypes[K]) => boolean,
  ): Promise<RecordsResult<RecordTypes[K]>> {
    const raw = keepRaw === undefined ? records : records.filter(keepRaw);
    const { refused } = await this.insert(table, raw, token);
    let stored = records as RecordTypes[K][];
    if (refused.length > 0) {
      const gone = new Set(refused.map((r) => r.row));
      stored = records.filter((r) => !gone.has(r));
    }
    let rollupRefused: RefusedRow[] = [];
    if (table === 'requests') rollupRefused = await this.storeRequestRollups(stored as MeshRequest[], token);
    else if (table === 'flows') rollupRefused = (await this.insert('flows_1m', rollUpFlows(stored as Flow[]), `${token}:rollup`)).refused;
    else if (table === 'spans') {
      const spans = stored as Span[];
      rollupRefused = await this.spanEdges.exclusive(async () => {
        const now = Date.now();
        const plan = this.spanEdges.planSpans(spans, now);
        const { refused: edgesRefused } = await this.insert('span_edges_1m', plan.rows, `${token}:rollup`);
        this.spanEdges.commit(plan, now);
        return edgesRefused;
      });
    }
    return { stored, refused, rollupRefused };
  }

  /**
   * The rows derived from a batch of stored request records, in an order a retried batch can repeat (see below). One
   * insert for the three groupings of the requests (RED per reporter, the joined view, the ledger): chDB spends about
   * 8-15 ms on an insert whatever its size, and the batch's acknowledgement waits for them.
   */
  private async storeRequestRollups(requests: MeshRequest[], token: string): Promise<RefusedRow[]> {
    const counted = requests.map(contributionOf);
    const refused: RefusedRow[] = [];
    // The hops these records logged: spans planned from now on count nothing for them, and spans already waiting
    // for them are taken back. Before the pairing commits, so a retry after a failure here plans the joined view as
    // the first attempt did.
    const now = Date.now();
    const hops = this.spanEdges.markLogged(requests, now);
    await this.spanEdges.exclusive(async () => {
      const plan = this.spanEdges.planLogs(hops, now);
      // Usually none: only spans still waiting for a log of these hops are taken back.
      if (plan.rows.length > 0) refused.push(...(await this.insert('span_edges_1m', plan.rows, `${token}:spans`)).refused);
      this.spanEdges.commit(plan, now);
    });
    const plan = this.pairing.plan(requests, counted, now);
    // The batch's own rows (per reporter) and the joined view's (reporter `all`): their keys differ in the reporter.
    refused.push(...(await this.insert('requests_rollup_1m', [...requestRollupOf(counted).rows(), ...plan.rows], `${token}:rollup`)).refused);
    // Committed only once the rows are stored. A batch that fails after this point (dead-lettering its refused
    // rows, say) and comes again is planned against the committed state: its rows are dropped as a repeat under
    // the same token, but its records may be left waiting a second time, until the pairing window ends.
    this.pairing.commit(plan, now);
    return refused;
  }

  /**
   * Inserts `rows` (records with the table's column names: the lib/model record fields, or rollup rows) under
   * `token`. Resolves once ClickHouse has every row it will ever take; rejects with a retriable `StoreError` when
   * the insert should be tried again later (the caller lets the bus redeliver, the tokens keep it from counting twice).
   */
  async insert(table: StoredTable, rows: readonly object[], token: string): Promise<InsertResult> {
    const result: InsertResult = { stored: 0, refused: [], inserts: 0 };
    for (let start = 0; start < rows.length; start += MAX_ROWS_PER_INSERT) {
      const chunk = rows.length <= MAX_ROWS_PER_INSERT ? rows : rows.slice(start, start + MAX_ROWS_PER_INSERT);
      const encoded = encode(table, chunk, result.refused);
      await this.insertOrIsolate(table, encoded.rows, `${token}:${start / MAX_ROWS_PER_INSERT}`, result, encoded.block);
    }
    result.stored = rows.length - result.refused.length;
    return result;
  }

  private async insertOrIsolate(table: StoredTable, rows: readonly object[], token: string, result: InsertResult, block?: Buffer): Promise<void> {
    if (rows.length === 0) return;
    const columns = TABLE_COLUMNS[table];
    try {
      result.inserts++;
      await this.conn.insertBlock(
        table,
        columns.map((c) => c.name),
        block ?? encodeNativeBlock(columns, rows),
        {
          insert_deduplicate: 1,
          insert_deduplication_token: token,
          max_partitions_per_insert_block: this.options.maxPartitionsPerInsert,
        },
      );
    } catch (err) {
      const info = classifyStoreError(err);
      const detail = `${info.type}${info.code ? ` (${info.code})` : ''}: ${firstLine(err)}`;
      if (info.retriable) throw new StoreError(`insert into ${table} failed: ${detail}`, info, { cause: err });
      if (rows.length === 1) {
        result.refused.push({ table, row: rows[0] as object, error: detail });
        return;
      }
      const mid = rows.length >>> 1;
      await this.insertOrIsolate(table, rows.slice(0, mid), `${token}/0-${mid}`, result);
      await this.insertOrIsolate(table, rows.slice(mid), `${token}/${mid}-${rows.length}`, result);
    }
  }
}

/**
 * The chunk as one Native block, less the rows a column cannot hold (refused here with the encoder's reason, each
 * alone). Deterministic, so a redelivered batch gives the same blocks and tokens.
 */
function encode(table: StoredTable, rows: readonly object[], refused: RefusedRow[]): { rows: readonly object[]; block: Buffer } {
  let kept = rows;
  for (;;) {
    try {
      return { rows: kept, block: encodeNativeBlock(TABLE_COLUMNS[table], kept) };
    } catch (err) {
      if (!(err instanceof EncodeError)) throw err;
      refused.push({ table, row: kept[err.row] as object, error: `not storable: ${err.message}` });
      kept = kept.filter((_, i) => i !== err.row);
    }
  }
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const nl = message.indexOf('\n');
  return (nl >= 0 ? message.slice(0, nl) : message).slice(0, 500);
}
