/**
 * The columns the aggregator writes, per table, as Native types (lib/store/native.ts): the stored columns of
 * clickhouse/migrations in table order, without MATERIALIZED ones. A low-cardinality
 * column is written as `LowCardinality(String)`, a `Map(LowCardinality(String), String)` as `Map(String,
 * String)` and a `SimpleAggregateFunction(sumMap, Map(...))` as its Map: ClickHouse converts those on insert.
 * native.test.ts checks every list against the migrated tables.
 */
import type { NativeColumn, NativeType } from './native';

const LC: NativeType = 'LowCardinality(String)';

const columns = (spec: Record<string, NativeType>): readonly NativeColumn[] =>
  Object.freeze(Object.entries(spec).map(([name, type]) => Object.freeze({ name, type })));

export const REQUEST_COLUMNS = columns({
  startTimeMs: 'Int64',
  reporter: LC,
  sourceWorkload: LC,
  sourceNamespace: LC,
  sourceAddress: 'String',
  destinationHost: LC,
  destinationService: LC,
  destinationNamespace: LC,
  destinationSubset: LC,
  destinationPort: 'UInt16',
  destinationWorkload: LC,
  destinationVersion: LC,
  destinationAddress: 'String',
  protocol: LC,
  httpVersion: LC,
  method: LC,
  path: 'String',
  authority: LC,
  responseCode: 'UInt16',
  responseFlags: LC,
  responseCodeDetails: LC,
  connectionTerminationDetails: 'String',
  upstreamTransportFailureReason: 'String',
  upstreamCluster: LC,
  requestedServerName: LC,
  routeName: LC,
  userAgent: 'String',
  bytesReceived: 'UInt64',
  bytesSent: 'UInt64',
  durationMs: 'Float64',
  upstreamServiceTimeMs: 'Int64',
  requestId: 'String',
  traceId: 'String',
  outcome: LC,
  denyReason: LC,
  policy: LC,
  rule: 'Int32',
  attributes: 'Map(String, String)',
});

export const FLOW_COLUMNS = columns({
  startTimeMs: 'Int64',
  reporter: LC,
  sourceWorkload: LC,
  sourceNamespace: LC,
  sourceAddress: 'String',
  destinationHost: LC,
  destinationService: LC,
  destinationNamespace: LC,
  destinationWorkload: LC,
  destinationAddress: 'String',
  destinationPort: 'UInt16',
  transport: LC,
  verdict: LC,
  denyReason: LC,
  detail: LC,
  policy: LC,
  rule: 'Int32',
  count: 'UInt64',
  bytes: 'UInt64',
  packets: 'UInt64',
  attributes: 'Map(String, String)',
});

export const SPAN_COLUMNS = columns({
  startTimeMs: 'Float64',
  traceId: 'String',
  spanId: 'String',
  parentSpanId: 'String',
  name: LC,
  kind: LC,
  durationMs: 'Float64',
  serviceName: LC,
  requestId: 'String',
  upstreamCluster: LC,
  destinationHost: LC,
  destinationService: LC,
  destinationNamespace: LC,
  destinationSubset: LC,
  responseCode: 'UInt16',
  responseFlags: LC,
  error: 'Bool',
  attributes: 'Map(String, String)',
});

/**
 * requests_rollup_1m (migration 009): RED counts and the ledger per minute, reporter (`all` for the joined view) and
 * ledger key, as signed sums (lib/store/rollup.ts RequestRollupRow).
 */
export const REQUEST_ROLLUP_COLUMNS = columns({
  minute: "DateTime('UTC')",
  reporter: LC,
  sourceWorkload: LC,
  sourceNamespace: LC,
  destinationHost: LC,
  destinationService: LC,
  destinationNamespace: LC,
  destinationSubset: LC,
  destinationPort: 'UInt16',
  protocol: LC,
  outcome: LC,
  denyReason: LC,
  policy: LC,
  rule: 'Int32',
  requests: 'Int64',
  errors: 'Int64',
  denied: 'Int64',
  appErrors: 'Int64',
  meshFailures: 'Int64',
  latencyBuckets: 'Map(Int16, Int64)',
});

export const FLOW_ROLLUP_COLUMNS = columns({
  minute: "DateTime('UTC')",
  reporter: LC,
  sourceWorkload: LC,
  sourceNamespace: LC,
  destinationHost: LC,
  destinationService: LC,
  destinationNamespace: LC,
  destinationWorkload: LC,
  destinationPort: 'UInt16',
  verdict: LC,
  denyReason: LC,
  policy: LC,
  rule: 'Int32',
  records: 'AggregateFunction(count)',
  connections: 'AggregateFunction(sum, UInt64)',
});

/** span_edges_1m (migration 008): calls only traces saw, per minute, as signed sums (lib/store/spanedges.ts). */
export const SPAN_EDGE_COLUMNS = columns({
  minute: "DateTime('UTC')",
  serviceName: LC,
  destinationHost: LC,
  destinationService: LC,
  destinationNamespace: LC,
  destinationSubset: LC,
  requests: 'Int64',
  errors: 'Int64',
  latencyBuckets: 'Map(Int16, Int64)',
});

export type StoredTable = 'requests' | 'flows' | 'spans' | 'requests_rollup_1m' | 'flows_1m' | 'span_edges_1m';

export const TABLE_COLUMNS: Readonly<Record<StoredTable, readonly NativeColumn[]>> = {
  requests: REQUEST_COLUMNS,
  flows: FLOW_COLUMNS,
  spans: SPAN_COLUMNS,
  requests_rollup_1m: REQUEST_ROLLUP_COLUMNS,
  flows_1m: FLOW_ROLLUP_COLUMNS,
  span_edges_1m: SPAN_EDGE_COLUMNS,
};
