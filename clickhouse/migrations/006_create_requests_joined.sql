-- Issue 10: the joined view (reporter=all: one answer per request, CONTRACT §6) per minute, written by the
-- aggregator (services/aggregator/pairing.ts), so it no longer needs raw rows (MESHLENS_RAW_REQUESTS) and a
-- long period reads minutes, not requests. The aggregator pairs a source record with the destination record of
-- the same request id and hop as they arrive: a record first counts as its side saw it, and when its partner
-- comes (in the same batch or a later one) that count is taken back and the pair is added. So the sums are
-- signed. A pair counts in its source record's minute, an unpaired record in its own.
CREATE TABLE IF NOT EXISTS {{database}}.requests_joined_1m
(
    minute DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    sourceWorkload LowCardinality(String),
    sourceNamespace LowCardinality(String),
    destinationHost LowCardinality(String),
    destinationService LowCardinality(String),
    destinationNamespace LowCardinality(String),
    destinationSubset LowCardinality(String),
    requests SimpleAggregateFunction(sum, Int64),
    errors SimpleAggregateFunction(sum, Int64),
    denied SimpleAggregateFunction(sum, Int64),
    appErrors SimpleAggregateFunction(sum, Int64),
    meshFailures SimpleAggregateFunction(sum, Int64),
    latencyBuckets SimpleAggregateFunction(sumMap, Map(Int16, Int64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (destinationNamespace, destinationService, destinationSubset, sourceNamespace, sourceWorkload, destinationHost, minute)
TTL minute + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- The raw rows already stored, joined as the query API joined them until now (lib/store/queries.ts
-- pairedRequests): per request id and hop, the i-th source record by start time pairs with the i-th destination
-- record; a pair takes the source's names and latency, the destination's subset where the source names none, and
-- the destination's verdict when it denied the request.
INSERT INTO {{database}}.requests_joined_1m
SELECT toStartOfMinute(toDateTime(timestamp, 'UTC')) AS minute,
    sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset,
    count() AS requests,
    countIf(outcome = 'error') AS errors,
    countIf(outcome = 'denied') AS denied,
    countIf(outcome = 'error' AND NOT meshFailure) AS appErrors,
    countIf(meshFailure) AS meshFailures,
    sumMap(map(
        if(durationMs > 0, toInt16(greatest(-32767, least(32767, ceil(log(durationMs) / log(1.01 / 0.99))))), toInt16(-32768)),
        toInt64(1))) AS latencyBuckets
FROM
(
    SELECT timestamp, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace,
        if(destinationSubset = '', partner_destinationSubset, destinationSubset) AS destinationSubset, durationMs,
        if(deniedThere, partner_outcome, outcome) AS outcome,
        if(deniedThere, partner_meshFailure, meshFailure) AS meshFailure
    FROM
    (
        SELECT *, reporter = 'source' AND partner_outcome = 'denied' AS deniedThere
        FROM
        (
            SELECT *, countIf(reporter = 'source') OVER pair AS sources,
                anyIf(outcome, reporter = 'destination') OVER pair AS partner_outcome,
                anyIf(meshFailure, reporter = 'destination') OVER pair AS partner_meshFailure,
                anyIf(destinationSubset, reporter = 'destination') OVER pair AS partner_destinationSubset
            FROM
            (
                SELECT timestamp, reporter, requestId, sourceWorkload, sourceNamespace, destinationHost, destinationService,
                    destinationNamespace, destinationSubset, durationMs, outcome, meshFailure,
                    row_number() OVER (PARTITION BY requestId, destinationNamespace, destinationService, reporter
                        ORDER BY startTimeMs, durationMs, responseCode) AS attempt
                FROM {{database}}.requests
                WHERE requestId != '' AND reporter IN ('source', 'destination')
            )
            WINDOW pair AS (PARTITION BY requestId, destinationNamespace, destinationService, attempt)
        )
        WHERE reporter = 'source' OR sources = 0
    )
    UNION ALL
    SELECT timestamp, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset,
        durationMs, outcome, meshFailure
    FROM {{database}}.requests
    WHERE requestId = '' OR reporter NOT IN ('source', 'destination')
)
GROUP BY minute, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset;
