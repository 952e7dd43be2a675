export { DEFAULT_DATABASE, connect } from './client';
export type { Connection, ConnectOptions } from './client';
export { MIGRATIONS_DIR, migrate, readMigrations, splitStatements } from './migrations';
export type { Migration, Retention } from './migrations';
export { MAX_ROWS_PER_INSERT, StoreWriter } from './writer';
export type { InsertResult, RecordsResult, RecordTable, RefusedRow, StoredRecord, StoreWriterOptions } from './writer';
export { TABLE_COLUMNS } from './tables';
export type { StoredTable } from './tables';
export { StoreError, classifyStoreError } from './errors';
export type { StoreErrorInfo } from './errors';
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
export { PAIRING_WINDOW_MS, Pairing } from './pairing';
export { DEFAULT_MAX_LOGGED_HOPS, DEFAULT_MAX_WAITING_SPANS, SpanEdges } from './spanedges';
