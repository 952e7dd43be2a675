-- Raw records, one row per normalized record (lib/model/records.ts). Column names are the record's own
-- field names, so a record is inserted as JSONEachRow without re-mapping (the writer's hot path).
-- Conventions of the OpenTelemetry Collector ClickHouse exporter: LowCardinality for bounded strings,
-- Delta/ZSTD codecs, daily partitions, a TTL that drops whole parts.
-- non_replicated_deduplication_window: a batch redelivered with the same insert_deduplication_token
-- (a crash between insert and bus commit) is dropped here and in every materialized view.

CREATE TABLE IF NOT EXISTS {{database}}.requests
(
    startTimeMs Int64 CODEC(Delta(8), ZSTD(1)),
    timestamp DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(startTimeMs),
    reporter LowCardinality(String),
    sourceWorkload LowCardinality(String),
    sourceNamespace LowCardinality(String),
    sourceAddress String CODEC(ZSTD(1)),
    destinationHost LowCardinality(String),
    destinationService LowCardinality(String),
    destinationNamespace LowCardinality(String),
    destinationSubset LowCardinality(String),
    destinationPort UInt16,
    destinationWorkload LowCardinality(String),
    destinationVersion LowCardinality(String),
    destinationAddress String CODEC(ZSTD(1)),
    protocol LowCardinality(String),
    httpVersion LowCardinality(String),
    method LowCardinality(String),
    path String CODEC(ZSTD(1)),
    authority LowCardinality(String),
    responseCode UInt16,
    responseFlags LowCardinality(String),
    responseCodeDetails LowCardinality(String),
    connectionTerminationDetails String CODEC(ZSTD(1)),
    upstreamTransportFailureReason String CODEC(ZSTD(1)),
    upstreamCluster LowCardinality(String),
    requestedServerName LowCardinality(String),
    routeName LowCardinality(String),
    userAgent String CODEC(ZSTD(1)),
    bytesReceived UInt64 CODEC(T64, ZSTD(1)),
    bytesSent UInt64 CODEC(T64, ZSTD(1)),
    durationMs Float64 CODEC(ZSTD(1)),
    upstreamServiceTimeMs Int64 CODEC(T64, ZSTD(1)),
    requestId String CODEC(ZSTD(1)),
    traceId String CODEC(ZSTD(1)),
    outcome LowCardinality(String),
    denyReason LowCardinality(String),
    policy LowCardinality(String),
    rule Int32,
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_request_id requestId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_trace_id traceId TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (destinationNamespace, destinationService, destinationSubset, timestamp)
TTL toDateTime(timestamp) + INTERVAL 7 DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {{database}}.flows
(
    startTimeMs Int64 CODEC(Delta(8), ZSTD(1)),
    timestamp DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(startTimeMs),
    reporter LowCardinality(String),
    sourceWorkload LowCardinality(String),
    sourceNamespace LowCardinality(String),
    sourceAddress String CODEC(ZSTD(1)),
    destinationHost LowCardinality(String),
    destinationService LowCardinality(String),
    destinationNamespace LowCardinality(String),
    destinationWorkload LowCardinality(String),
    destinationAddress String CODEC(ZSTD(1)),
    destinationPort UInt16,
    transport LowCardinality(String),
    verdict LowCardinality(String),
    denyReason LowCardinality(String),
    detail LowCardinality(String),
    policy LowCardinality(String),
    rule Int32,
    count UInt64 CODEC(T64, ZSTD(1)),
    bytes UInt64 CODEC(T64, ZSTD(1)),
    packets UInt64 CODEC(T64, ZSTD(1)),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (destinationNamespace, destinationService, timestamp)
TTL toDateTime(timestamp) + INTERVAL 7 DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {{database}}.spans
(
    startTimeMs Float64 CODEC(ZSTD(1)),
    timestamp DateTime64(6, 'UTC') MATERIALIZED fromUnixTimestamp64Micro(toInt64(round(startTimeMs * 1000))),
    traceId String CODEC(ZSTD(1)),
    spanId String CODEC(ZSTD(1)),
    parentSpanId String CODEC(ZSTD(1)),
    name LowCardinality(String),
    kind LowCardinality(String),
    durationMs Float64 CODEC(ZSTD(1)),
    serviceName LowCardinality(String),
    requestId String CODEC(ZSTD(1)),
    upstreamCluster LowCardinality(String),
    destinationHost LowCardinality(String),
    destinationService LowCardinality(String),
    destinationNamespace LowCardinality(String),
    destinationSubset LowCardinality(String),
    responseCode UInt16,
    responseFlags LowCardinality(String),
    error Bool,
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_trace_id traceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_request_id requestId TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (serviceName, name, timestamp)
TTL toDateTime(timestamp) + INTERVAL 7 DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;
