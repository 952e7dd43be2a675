-- Issue 10: the L7 part of the allowed/denied ledger (GET /api/v1/flows) per minute, written by the aggregator
-- (lib/store/rollup.ts RequestRollup), so the ledger counts every request when MESHLENS_RAW_REQUESTS leaves ok rows
-- out, and a long period reads minutes. Its key is the ledger's grouping: caller, destination, subset, port,
-- protocol (tcp is L4) and verdict (outcome, deny reason, policy, rule). `reporter` is the record's own for the
-- per-reporter rows; `all` marks the joined view's rows (lib/store/pairing.ts), whose sums are signed like
-- requests_joined_1m's: a record first counts as its side saw it, and when its partner comes that count is taken
-- back and the pair added, with the destination's verdict when the destination denied it.
CREATE TABLE IF NOT EXISTS {{database}}.requests_ledger_1m
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
    requests SimpleAggregateFunction(sum, Int64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (destinationNamespace, destinationService, reporter, sourceNamespace, sourceWorkload, destinationHost, destinationSubset,
    destinationPort, protocol, outcome, denyReason, policy, rule, minute)
TTL minute + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- The raw rows already stored, per reporter: the ledger read them until now (lib/store/queries.ts queryLedger).
INSERT INTO {{database}}.requests_ledger_1m
SELECT toStartOfMinute(toDateTime(timestamp, 'UTC')) AS minute, reporter,
    sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset,
    destinationPort, protocol, outcome, denyReason, policy, rule,
    toInt64(count()) AS requests
FROM {{database}}.requests
GROUP BY minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset,
    destinationPort, protocol, outcome, denyReason, policy, rule;

-- And joined (reporter `all`), as migration 006 joined them for requests_joined_1m: per request id and hop, the
-- i-th source record by start time pairs with the i-th destination record; a pair is the source record (names,
-- port, protocol) with the destination's subset where the source names none, and the destination's verdict when it
-- denied the request.
INSERT INTO {{database}}.requests_ledger_1m
SELECT toStartOfMinute(toDateTime(timestamp, 'UTC')) AS minute, 'all' AS reporter,
    sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset,
    destinationPort, protocol, outcome, denyReason, policy, rule,
    toInt64(count()) AS requests
FROM
(
    SELECT timestamp, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace,
        if(destinationSubset = '', partner_destinationSubset, destinationSubset) AS destinationSubset, destinationPort, protocol,
        if(deniedThere, partner_outcome, outcome) AS outcome,
        if(deniedThere, partner_denyReason, denyReason) AS denyReason,
        if(deniedThere, partner_policy, policy) AS policy,
        if(deniedThere, partner_rule, rule) AS rule
    FROM
    (
        SELECT *, reporter = 'source' AND partner_outcome = 'denied' AS deniedThere
        FROM
        (
            SELECT *, countIf(reporter = 'source') OVER pair AS sources,
                anyIf(outcome, reporter = 'destination') OVER pair AS partner_outcome,
                anyIf(denyReason, reporter = 'destination') OVER pair AS partner_denyReason,
                anyIf(policy, reporter = 'destination') OVER pair AS partner_policy,
                anyIf(rule, reporter = 'destination') OVER pair AS partner_rule,
                anyIf(destinationSubset, reporter = 'destination') OVER pair AS partner_destinationSubset
            FROM
            (
                SELECT timestamp, reporter, requestId, sourceWorkload, sourceNamespace, destinationHost, destinationService,
                    destinationNamespace, destinationSubset, destinationPort, protocol, outcome, denyReason, policy, rule,
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
        destinationPort, protocol, outcome, denyReason, policy, rule
    FROM {{database}}.requests
    WHERE requestId = '' OR reporter NOT IN ('source', 'destination')
)
GROUP BY minute, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset,
    destinationPort, protocol, outcome, denyReason, policy, rule;
