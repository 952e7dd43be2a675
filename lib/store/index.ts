/**
 * lib/store: ClickHouse, embedded (chDB) or a server, through one client: migrations at start, the columnar
 * deduplicating writer, and the parameterized queries behind the API.
 */

// Connecting: chDB in this process or a server, the same SQL on both.
export { DEFAULT_DATABASE, connect } from './client';
export type { Connection, ConnectOptions } from './client';

// The schema: clickhouse/migrations, forward-only, run at start; the columns of each table.
export { MIGRATIONS_DIR, migrate, readMigrations, splitStatements } from './migrations';
export type { Migration, Retention } from './migrations';
export { TABLE_COLUMNS } from './tables';
export type { StoredTable } from './tables';

// Writing: group commits of Native blocks, one dedup token per batch; errors classified (retriable or refused).
export { MAX_ROWS_PER_INSERT, StoreWriter } from './writer';
export type { InsertResult, RecordsResult, RecordTable, RefusedRow, StoredRecord, StoreWriterOptions } from './writer';
export { StoreError, classifyStoreError } from './errors';
export type { StoreErrorInfo } from './errors';

// Computed as records arrive: the joined view (client and server records paired, `reporter=all`), and the
// graph edges only traces saw.
export { PAIRING_WINDOW_MS, Pairing } from './pairing';
export { DEFAULT_MAX_LOGGED_HOPS, DEFAULT_MAX_WAITING_SPANS, SpanEdges } from './spanedges';

// Reading: subsets, the flows ledger, graph edges and latency shifts, over a window, with limits.
export {
  DEFAULT_QUERY_TIMEOUT_MS,
  LATENCY_ACCURACY,
  ZERO_BUCKET,
  bucketValue,
  latencyBucket,
  nearestRank,
  queryEdges,
  queryLatencyShifts,
  queryLedger,
  querySpanEdges,
  querySubsets,
  splitWindow,
  countableScope,
} from './queries';
export type { EdgeRow, LatencyPair, LatencyShiftRow, Layer, LedgerRow, QueryLimits, QueryScope, ReporterFilter, SpanEdgeRow, SubsetRow } from './queries';
