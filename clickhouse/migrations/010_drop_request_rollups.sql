-- The three request rollups migration 009 brought into requests_rollup_1m: nothing reads or writes them any more.
-- Dropped, not left to expire, so that an aggregator replica still on an older version fails its rollup insert
-- (UNKNOWN_TABLE, retriable: its batches are redelivered, unacknowledged, until a replica of this version stores them)
-- instead of storing counts into a table nothing reads. A migration of its own, after 009's: a start that stops
-- between the two finds 009's tables still there to read, and DROP ... IF EXISTS can run again.
DROP TABLE IF EXISTS {{database}}.requests_1m;

DROP TABLE IF EXISTS {{database}}.requests_joined_1m;

DROP TABLE IF EXISTS {{database}}.requests_ledger_1m;
