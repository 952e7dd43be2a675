-- Issue 10: graph edges only traces saw, per minute, written by the aggregator (lib/store/spanedges.ts): CLIENT spans
-- whose hop (request id and destination service) no access log reported. The query API read them from the raw
-- spans, leaving out hops found among the raw request rows; with MESHLENS_RAW_REQUESTS below 1 most logged hops have
-- no raw row, and over a long window that lookup read every raw request row. The aggregator decides as records
-- arrive: a span counts at once, and when an access log of its hop comes within the pairing window (or came before
-- it) the count is taken back, so the sums are signed. `serviceName` is the caller's tracing name.
CREATE TABLE IF NOT EXISTS {{database}}.span_edges_1m
(
    minute DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    serviceName LowCardinality(String),
    destinationHost LowCardinality(String),
    destinationService LowCardinality(String),
    destinationNamespace LowCardinality(String),
    destinationSubset LowCardinality(String),
    requests SimpleAggregateFunction(sum, Int64),
    errors SimpleAggregateFunction(sum, Int64),
    latencyBuckets SimpleAggregateFunction(sumMap, Map(Int16, Int64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (destinationNamespace, destinationService, destinationSubset, serviceName, destinationHost, minute)
TTL minute + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- The raw spans already stored, decided as the query API decided until now: a hop is logged when a raw request row
-- has its request id and destination service. Only the request ids that client spans carry are looked up, so the
-- set stays the size of the traced requests, not of every request stored. Latency buckets as in migration 004.
INSERT INTO {{database}}.span_edges_1m
SELECT toStartOfMinute(toDateTime(timestamp, 'UTC')) AS minute,
    serviceName, destinationHost, destinationService, destinationNamespace, destinationSubset,
    toInt64(count()) AS requests,
    toInt64(countIf(error)) AS errors,
    sumMap(map(
        if(durationMs > 0, toInt16(greatest(-32767, least(32767, ceil(log(durationMs) / log(1.01 / 0.99))))), toInt16(-32768)),
        toInt64(1))) AS latencyBuckets
FROM {{database}}.spans
WHERE kind = 'client' AND destinationService != ''
    AND (requestId = '' OR (requestId, destinationService) NOT IN (
        SELECT requestId, destinationService FROM {{database}}.requests
        WHERE requestId IN (SELECT requestId FROM {{database}}.spans WHERE kind = 'client' AND requestId != '')))
GROUP BY minute, serviceName, destinationHost, destinationService, destinationNamespace, destinationSubset;
