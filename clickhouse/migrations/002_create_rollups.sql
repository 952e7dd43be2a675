-- Per-minute rollups, filled by materialized views on insert into the raw tables. The query API reads
-- whole minutes from here and only the partial minutes at a window's edges from the raw tables, so
-- answers stay exact for any window while long periods read few rows.
-- Latency: DDSketch states (quantilesDD with 1 % relative accuracy), mergeable across minutes and series.
-- Not quantilesTDigest: a t-digest's answer depends on the order states are merged in, so the same query
-- gave different p50s before and after a restart, and it states no error bound. A DDSketch merges by adding
-- bucket counts (the same answer every time) and promises every quantile within 1 % of the exact value.

CREATE TABLE IF NOT EXISTS {{database}}.requests_1m
(
    minute DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    reporter LowCardinality(String),
    sourceWorkload LowCardinality(String),
    sourceNamespace LowCardinality(String),
    destinationHost LowCardinality(String),
    destinationService LowCardinality(String),
    destinationNamespace LowCardinality(String),
    destinationSubset LowCardinality(String),
    requests AggregateFunction(count),
    errors AggregateFunction(countIf, UInt8),
    denied AggregateFunction(countIf, UInt8),
    latencyMs AggregateFunction(quantilesDD(0.01, 0.5, 0.9, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (destinationNamespace, destinationService, destinationSubset, reporter, sourceNamespace, sourceWorkload, destinationHost, minute)
TTL minute + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.requests_1m_mv TO {{database}}.requests_1m AS
SELECT
    toStartOfMinute(fromUnixTimestamp64Milli(startTimeMs, 'UTC')) AS minute,
    reporter, sourceWorkload, sourceNamespace,
    destinationHost, destinationService, destinationNamespace, destinationSubset,
    countState() AS requests,
    countIfState(outcome = 'error') AS errors,
    countIfState(outcome = 'denied') AS denied,
    quantilesDDState(0.01, 0.5, 0.9, 0.99)(durationMs) AS latencyMs
FROM {{database}}.requests
GROUP BY minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset;

CREATE TABLE IF NOT EXISTS {{database}}.flows_1m
(
    minute DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    reporter LowCardinality(String),
    sourceWorkload LowCardinality(String),
    sourceNamespace LowCardinality(String),
    destinationHost LowCardinality(String),
    destinationService LowCardinality(String),
    destinationNamespace LowCardinality(String),
    destinationPort UInt16,
    verdict LowCardinality(String),
    denyReason LowCardinality(String),
    policy LowCardinality(String),
    rule Int32,
    records AggregateFunction(count),
    connections AggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (destinationNamespace, destinationService, sourceNamespace, sourceWorkload, destinationHost, destinationPort, reporter, verdict, denyReason, policy, rule, minute)
TTL minute + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.flows_1m_mv TO {{database}}.flows_1m AS
SELECT
    toStartOfMinute(fromUnixTimestamp64Milli(startTimeMs, 'UTC')) AS minute,
    reporter, sourceWorkload, sourceNamespace,
    destinationHost, destinationService, destinationNamespace, destinationPort,
    verdict, denyReason, policy, rule,
    countState() AS records,
    sumState(count) AS connections
FROM {{database}}.flows
GROUP BY minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationPort,
    verdict, denyReason, policy, rule;
