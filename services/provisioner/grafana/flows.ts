/**
 * Flows: who was allowed or denied to talk to whom, and by which policy, rule and reason — L7 from access logs
 * (requests_rollup_1m, the joined view: each request once, the destination's verdict where it denied) and L4
 * from flow logs (flows_1m). Read from ClickHouse so any stored period can be asked for.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { RowBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { DASHBOARD_UIDS, VARS, CH_DS, chQuery, chVariables, dashboard, sqlIn, table, timeseries } from './panels';

const DEST = `${sqlIn('destinationNamespace', VARS.namespace)} AND ${sqlIn('destinationService', VARS.service)}`;

/**
 * The ledger's rows, one per verdict detail. L7: reporter 'all' rows with an outcome (rows with outcome '' carry
 * only RED counts, docs/storage.md), signed sums. L4: the larger of the two reporters per detail, never their sum:
 * Calico and Hubble report one connection from both nodes.
 */
export function ledgerSql(): string {
  return `
SELECT layer, source, destination, subset, verdict, reason, policy, rule, sum(n) AS count
FROM (
  SELECT if(protocol = 'tcp', 'L4', 'L7') AS layer, concat(sourceWorkload, '.', sourceNamespace) AS source,
    concat(destinationService, '.', destinationNamespace) AS destination, destinationSubset AS subset,
    if(outcome = 'denied', 'denied', 'allowed') AS verdict, denyReason AS reason, policy, rule, sum(requests) AS n
  FROM meshlens.requests_rollup_1m
  WHERE $__timeFilter(minute) AND reporter = 'all' AND outcome != '' AND ${DEST} AND ${sqlIn('destinationSubset', VARS.subset)}
  GROUP BY layer, source, destination, subset, verdict, reason, policy, rule
  UNION ALL
  SELECT 'L4' AS layer, source, destination, '' AS subset, verdict, reason, policy, rule, max(c) AS n
  FROM (
    SELECT concat(sourceWorkload, '.', sourceNamespace) AS source, concat(destinationService, '.', destinationNamespace) AS destination,
      verdict, denyReason AS reason, policy, rule, reporter, toInt64(sumMerge(connections)) AS c
    FROM meshlens.flows_1m
    WHERE $__timeFilter(minute) AND ${DEST}
    GROUP BY source, destination, verdict, reason, policy, rule, reporter
  )
  GROUP BY source, destination, verdict, reason, policy, rule
)
GROUP BY layer, source, destination, subset, verdict, reason, policy, rule
HAVING count > 0`;
}

export function ledgerPanel() {
  return table('Allowed and denied, by source, destination, policy, rule and reason', 'Every verdict detail over the time range, L4 and L7.')
    .datasource(CH_DS)
    .withTarget(chQuery('A', `${ledgerSql()}\nORDER BY verdict DESC, count DESC`));
}

export function deniedByPolicyPanel() {
  return table('Denials by policy, rule and reason', 'Which AuthorizationPolicy or NetworkPolicy rule refused what, L4 and L7 apart.')
    .datasource(CH_DS)
    .withTarget(
      chQuery(
        'A',
        `SELECT layer, reason, policy, rule, sum(count) AS denied, uniqExact(source) AS sources, uniqExact(destination) AS destinations
FROM (${ledgerSql()})
WHERE verdict = 'denied'
GROUP BY layer, reason, policy, rule
ORDER BY denied DESC`,
      ),
    );
}

export function deniedOverTimePanel() {
  // $__timeInterval(minute): the plugin's toStartOfInterval to the panel's interval; the rollups are per minute, so
  // a shorter interval leaves gaps rather than inventing a finer grain.
  return timeseries('Denials over time by layer and reason', 'Denied requests (L7) and connections (L4) per interval.', 'short')
    .datasource(CH_DS)
    .interval('1m')
    .withTarget(
      chQuery(
        'A',
        `SELECT t, concat(layer, ' ', reason) AS series, sum(n) AS denied
FROM (
  SELECT $__timeInterval(minute) AS t, if(protocol = 'tcp', 'L4', 'L7') AS layer, denyReason AS reason, sum(requests) AS n
  FROM meshlens.requests_rollup_1m
  WHERE $__timeFilter(minute) AND reporter = 'all' AND outcome = 'denied' AND ${DEST} AND ${sqlIn('destinationSubset', VARS.subset)}
  GROUP BY t, layer, reason
  UNION ALL
  SELECT t, 'L4' AS layer, reason, max(c) AS n
  FROM (
    SELECT $__timeInterval(minute) AS t, denyReason AS reason, reporter, toInt64(sumMerge(connections)) AS c
    FROM meshlens.flows_1m
    WHERE $__timeFilter(minute) AND verdict = 'denied' AND ${DEST}
    GROUP BY t, reason, reporter
  )
  GROUP BY t, reason
)
GROUP BY t, series
ORDER BY t`,
        'timeSeries',
      ),
    );
}

export function flowsDashboard(): Dashboard {
  const b = dashboard(DASHBOARD_UIDS.flows, 'meshlens / Flows', 'The allowed/denied ledger from ClickHouse: L7 requests and L4 connections by policy, rule and reason.');
  for (const v of chVariables()) b.withVariable(v);
  return b
    .withRow(new RowBuilder('Denials'))
    .withPanel(deniedOverTimePanel().span(24))
    .withPanel(deniedByPolicyPanel())
    .withRow(new RowBuilder('Ledger'))
    .withPanel(ledgerPanel())
    .build();
}
