-- Issue 10: the aggregator computes the per-minute rollups itself, per consumed batch, and inserts them into
-- requests_1m and flows_1m as the same aggregate states the views wrote (services/aggregator/rollup.ts). The
-- views ran a GROUP BY over every raw row inside each insert, and the rollups could not exist without raw rows
-- (MESHLENS_RAW_REQUESTS). Upgrade with every aggregator replica on this version: an older replica still
-- inserting raw rows would add no rollup rows once the views are gone.
DROP VIEW IF EXISTS {{database}}.requests_1m_mv;

DROP VIEW IF EXISTS {{database}}.flows_1m_mv;
