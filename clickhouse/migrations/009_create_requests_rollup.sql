-- One table for the three request rollups (requests_1m, requests_joined_1m, requests_ledger_1m), written by one insert
-- per consumed batch (lib/store/writer.ts). chDB spends about 8-15 ms of CPU and wall time on an insert whatever its
-- size, and a batch's acknowledgement waits for its inserts: three inserts of the same requests at three groupings
-- were most of the CPU per line and of the acknowledgement latency. The key is the union of the three keys, the
-- ledger's (caller, destination, subset, port, protocol, outcome, deny reason, policy, rule) per reporter, where
-- reporter `all` marks the joined view's rows (lib/store/pairing.ts); port and protocol are near-constant per
-- destination, so the rows are about the ledger's, fewer than the three tables held together. Every sum is signed
-- (the joined view takes back what a record counted alone once its partner comes), as in migration 006.
CREATE TABLE IF NOT EXISTS {{database}}.requests_rollup_1m
(
    minute DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    reporter LowCardinality(String),
    sourceWorkload LowCardinality(String),
    sourceNamespace LowCardinality(String),
    destinationHost LowCardinality(String),
    destinationService LowCardinality(String),
    destinationNamespace LowCardinality(String),
    destinationSubset LowCardinality(String),
    destinationPort UInt16,
    protocol LowCardinality(String),
    outcome LowCardinality(String),
    denyReason LowCardinality(String),
    policy LowCardinality(String),
    rule Int32,
    requests SimpleAggregateFunction(sum, Int64),
    errors SimpleAggregateFunction(sum, Int64),
    denied SimpleAggregateFunction(sum, Int64),
    appErrors SimpleAggregateFunction(sum, Int64),
    meshFailures SimpleAggregateFunction(sum, Int64),
    latencyBuckets SimpleAggregateFunction(sumMap, Map(Int16, Int64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (destinationNamespace, destinationService, destinationSubset, reporter, sourceNamespace, sourceWorkload, destinationHost,
    destinationPort, protocol, outcome, denyReason, policy, rule, minute)
TTL minute + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- The three tables as they stand, every count kept. They hold the same requests at different groupings, but not always
-- the same requests: requests_1m goes back further than the ledger migration 007 filled from the raw rows left then,
-- and its latency and failure classes have no ledger key. So the ledger's rows come over as they are (errors and
-- denied from their outcome), and each RED key (minute, reporter, names; `all` for requests_joined_1m, its count
-- states finalized as numbers) gets one row of what its ledger rows do not hold: its counts less theirs, its failure
-- classes and its latency histogram, under outcome '' and empty ledger details. Rows with outcome '' count in the
-- RED reads (subsets, graph, canaries: every row) and not in the ledger (lib/store/queries.ts queryLedger), so both
-- answer after the upgrade what they answered before. The DDSketch states of minutes from before migration 004
-- (latencyMs) are not brought over: no read has used them since 004.
-- Run once: a start that stopped after this insert and before the migration was recorded finds the table filled and
-- inserts nothing again. Stop other aggregator replicas while this and 010 run: what they store in the old tables in
-- between is not brought over.
INSERT INTO {{database}}.requests_rollup_1m
SELECT minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset,
    destinationPort, protocol, outcome, denyReason, policy, rule,
    sum(requests) AS sumRequests, sum(errors) AS sumErrors, sum(denied) AS sumDenied, sum(appErrors) AS sumAppErrors,
    sum(meshFailures) AS sumMeshFailures, sumMap(latencyBuckets) AS sumLatencyBuckets
FROM
(
    SELECT minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset,
        destinationPort, protocol, outcome, denyReason, policy, rule,
        toInt64(sum(requests)) AS requests,
        toInt64(if(outcome = 'error', sum(requests), 0)) AS errors,
        toInt64(if(outcome = 'denied', sum(requests), 0)) AS denied,
        toInt64(0) AS appErrors, toInt64(0) AS meshFailures,
        CAST(map(), 'Map(Int16, Int64)') AS latencyBuckets
    FROM {{database}}.requests_ledger_1m
    GROUP BY minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset,
        destinationPort, protocol, outcome, denyReason, policy, rule
    UNION ALL
    -- What the ledger rows hold, taken back from their RED key's row.
    SELECT minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset,
        toUInt16(0) AS destinationPort, '' AS protocol, '' AS outcome, '' AS denyReason, '' AS policy, toInt32(0) AS rule,
        -toInt64(sum(requests)) AS requests,
        -toInt64(sumIf(requests, outcome = 'error')) AS errors,
        -toInt64(sumIf(requests, outcome = 'denied')) AS denied,
        toInt64(0) AS appErrors, toInt64(0) AS meshFailures,
        CAST(map(), 'Map(Int16, Int64)') AS latencyBuckets
    FROM {{database}}.requests_ledger_1m
    GROUP BY minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset
    UNION ALL
    SELECT minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset,
        toUInt16(0) AS destinationPort, '' AS protocol, '' AS outcome, '' AS denyReason, '' AS policy, toInt32(0) AS rule,
        toInt64(countMerge(requests)) AS requests,
        toInt64(countIfMerge(errors)) AS errors,
        toInt64(countIfMerge(denied)) AS denied,
        toInt64(countIfMerge(appErrors)) AS appErrors,
        toInt64(countIfMerge(meshFailures)) AS meshFailures,
        CAST(sumMap(latencyBuckets), 'Map(Int16, Int64)') AS latencyBuckets
    FROM {{database}}.requests_1m
    GROUP BY minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset
    UNION ALL
    SELECT minute, 'all' AS reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset,
        toUInt16(0) AS destinationPort, '' AS protocol, '' AS outcome, '' AS denyReason, '' AS policy, toInt32(0) AS rule,
        toInt64(sum(requests)) AS requests,
        toInt64(sum(errors)) AS errors,
        toInt64(sum(denied)) AS denied,
        toInt64(sum(appErrors)) AS appErrors,
        toInt64(sum(meshFailures)) AS meshFailures,
        CAST(sumMap(latencyBuckets), 'Map(Int16, Int64)') AS latencyBuckets
    FROM {{database}}.requests_joined_1m
    GROUP BY minute, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset
)
WHERE (SELECT count() FROM {{database}}.requests_rollup_1m) = 0
GROUP BY minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset,
    destinationPort, protocol, outcome, denyReason, policy, rule
HAVING sumRequests != 0 OR sumErrors != 0 OR sumDenied != 0 OR sumAppErrors != 0 OR sumMeshFailures != 0
    OR arrayExists(n -> n != 0, mapValues(sumLatencyBuckets));
