-- Issue 9, counting truth.
--
-- 1. Latency quantiles by nearest rank: the value at rank ceil(q·n) of the sorted durations, as operators count
-- (p99 of {84, 10273} ms is 10273). quantilesDD ranks at q·(n−1) inside its state, which cannot be re-ranked, so
-- requests_1m gets a log-bucketed histogram that merges by adding counts: the DDSketch mapping with relative
-- accuracy α = 1 %, γ = (1+α)/(1−α), bucket ceil(log_γ(ms)), clamped to Int16, and bucket -32768 for durations
-- ≤ 0. The API takes the bucket holding rank ceil(q·n) and answers its representative 2γ^i/(γ+1), within 1 % of
-- the exact nearest-rank value. A plain map, so the aggregator can write the same rows itself (lib/store/queries.ts
-- has the same mapping in TypeScript). Minutes rolled up before this migration keep an empty map: their requests
-- count, their latency is not known (the API says how many durations its quantiles rest on).
-- latencyMs (the DDSketch states) stays for rows written before; the view no longer fills it.
ALTER TABLE {{database}}.requests_1m
    ADD COLUMN IF NOT EXISTS latencyBuckets SimpleAggregateFunction(sumMap, Map(Int16, UInt64)) AFTER latencyMs;

-- Recreated, not MODIFY QUERY (see 003). Stop other aggregator replicas while this runs.
DROP VIEW IF EXISTS {{database}}.requests_1m_mv;

CREATE MATERIALIZED VIEW {{database}}.requests_1m_mv TO {{database}}.requests_1m AS
SELECT
    toStartOfMinute(fromUnixTimestamp64Milli(startTimeMs, 'UTC')) AS minute,
    reporter, sourceWorkload, sourceNamespace,
    destinationHost, destinationService, destinationNamespace, destinationSubset,
    countState() AS requests,
    countIfState(outcome = 'error') AS errors,
    countIfState(outcome = 'denied') AS denied,
    countIfState(outcome = 'error' AND NOT meshFailure) AS appErrors,
    countIfState(meshFailure) AS meshFailures,
    sumMap(map(
        if(durationMs > 0, toInt16(greatest(-32767, least(32767, ceil(log(durationMs) / log(1.01 / 0.99))))), toInt16(-32768)),
        toUInt64(1))) AS latencyBuckets
FROM {{database}}.requests
GROUP BY minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset;

-- 2. Flows seen from both nodes: Calico reports a connection from the source and the destination node, Hubble at
-- egress and ingress, and reporter=all counts it once (lib/store/queries.ts queryLedger). The destination node often
-- names no Service (it sees the pod's address, e.g. Calico's dest_service_name "-"), so both records meet on the
-- destination workload, which flows_1m now keeps. Minutes rolled up before this migration have it '' and meet on
-- the destination service instead.
ALTER TABLE {{database}}.flows_1m
    ADD COLUMN IF NOT EXISTS destinationWorkload LowCardinality(String) AFTER destinationNamespace,
    MODIFY ORDER BY (destinationNamespace, destinationService, sourceNamespace, sourceWorkload, destinationHost, destinationPort, reporter,
        verdict, denyReason, policy, rule, minute, destinationWorkload);

DROP VIEW IF EXISTS {{database}}.flows_1m_mv;

CREATE MATERIALIZED VIEW {{database}}.flows_1m_mv TO {{database}}.flows_1m AS
SELECT
    toStartOfMinute(fromUnixTimestamp64Milli(startTimeMs, 'UTC')) AS minute,
    reporter, sourceWorkload, sourceNamespace,
    destinationHost, destinationService, destinationNamespace, destinationWorkload, destinationPort,
    verdict, denyReason, policy, rule,
    countState() AS records,
    sumState(count) AS connections
FROM {{database}}.flows
GROUP BY minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationWorkload,
    destinationPort, verdict, denyReason, policy, rule;
