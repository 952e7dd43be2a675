export { DEFAULT_DATABASE, connect } from './client';
export type { Connection, ConnectOptions } from './client';
export { MIGRATIONS_DIR, migrate, readMigrations, splitStatements } from './migrations';
export type { Migration, Retention } from './migrations';
export { MAX_ROWS_PER_INSERT, StoreWriter } from './writer';
export type { InsertStats, RecordTable } from './writer';
export { queryEdges, queryLatencyShifts, queryLedger, querySpanEdges, querySubsets, splitWindow } from './queries';
export type { EdgeRow, LatencyPair, LatencyShiftRow, Layer, LedgerRow, QueryScope, ReporterFilter, SpanEdgeRow, SubsetRow } from './queries';
