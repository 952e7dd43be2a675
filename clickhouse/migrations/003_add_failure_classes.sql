-- Canary judgement (issue 4) tells application 5xx from failures the mesh generated (no healthy upstream,
-- connect failure, retries exhausted, no route...: Envoy's upstream-failure response flags, the list in
-- lib/model/flags.ts, which a test keeps equal to the one below) and from policy denials.
-- `meshFailure` is computed from the stored flags, so rows stored before this migration get it too.

ALTER TABLE {{database}}.requests
    ADD COLUMN IF NOT EXISTS meshFailure Bool MATERIALIZED
        outcome != 'denied'
        AND hasAny(splitByChar(',', responseFlags),
            ['UH', 'UF', 'UO', 'URX', 'UT', 'UR', 'UC', 'UPE', 'UMSDR', 'LR', 'DF', 'NR', 'NC', 'NFCF', 'LH', 'OM', 'DO', 'UDO']);

-- Minutes rolled up before this migration hold empty states here (0 application errors, 0 mesh failures).
ALTER TABLE {{database}}.requests_1m
    ADD COLUMN IF NOT EXISTS appErrors AggregateFunction(countIf, UInt8) AFTER denied,
    ADD COLUMN IF NOT EXISTS meshFailures AggregateFunction(countIf, UInt8) AFTER appErrors;

-- Recreated, not `ALTER ... MODIFY QUERY`: after MODIFY QUERY, ClickHouse 26.7 no longer deduplicated a
-- replayed batch in the rollup once the server restarted (lib/store/store.test.ts, the restart case). Stop
-- other aggregator replicas while this runs: their inserts between DROP and CREATE would miss the rollup.
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
    quantilesDDState(0.01, 0.5, 0.9, 0.99)(durationMs) AS latencyMs
FROM {{database}}.requests
GROUP BY minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset;
