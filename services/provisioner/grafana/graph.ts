/**
 * Service graph: who calls whom, through which subset, and how it went. Grafana's Node Graph panel reads two
 * frames, told apart by their fields (`id` for nodes; `source` and `target` for edges); `arc__*` fields draw the
 * ring around a node (fractions adding up to 1), `detail__*` fields show on hover.
 * From requests_rollup_1m's joined view (reporter 'all'): each request once. Aliases never reuse a column's name:
 * ClickHouse resolves a name to the alias first (prefer_column_name_to_alias 0, the default a Grafana user has).
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as NodeGraphPanel } from '@grafana/grafana-foundation-sdk/nodegraph';
import { DASHBOARD_UIDS, VARS, CH_DS, chQuery, chVariables, dashboard, sqlIn } from './panels';

/** Callers are workloads, callees services: what the access logs name on each side. */
const FILTER = `$__timeFilter(minute) AND reporter = 'all' AND ${sqlIn('destinationNamespace', VARS.namespace)} AND ${sqlIn('destinationService', VARS.service)} AND ${sqlIn('destinationSubset', VARS.subset)}`;
const CALLER = `concat('workload:', sourceWorkload, '.', sourceNamespace)`;
const CALLEE = `concat('service:', destinationService, '.', destinationNamespace)`;

export function edgesSql(): string {
  return `
SELECT concat(source, '->', target, ':', subset) AS id, source, target, subset AS detail__subset,
  calls AS mainstat, concat(toString(failed), ' errors, ', toString(refused), ' denied') AS secondarystat,
  failed AS detail__errors, refused AS detail__denied
FROM (
  SELECT ${CALLER} AS source, ${CALLEE} AS target, destinationSubset AS subset,
    sum(requests) AS calls, sum(errors) AS failed, sum(denied) AS refused
  FROM meshlens.requests_rollup_1m
  WHERE ${FILTER}
  GROUP BY source, target, subset
  HAVING calls > 0
)`;
}

export function nodesSql(): string {
  return `
SELECT id, any(title) AS title, any(subtitle) AS subtitle, sum(received) AS mainstat, sum(sent) AS secondarystat,
  if(sum(received) > 0, greatest(0, sum(received) - sum(failed) - sum(refused)) / sum(received), 1) AS arc__ok,
  if(sum(received) > 0, sum(failed) / sum(received), 0) AS arc__errors,
  if(sum(received) > 0, sum(refused) / sum(received), 0) AS arc__denied
FROM (
  SELECT ${CALLEE} AS id, destinationService AS title, destinationNamespace AS subtitle,
    sum(requests) AS received, toInt64(0) AS sent, sum(errors) AS failed, sum(denied) AS refused
  FROM meshlens.requests_rollup_1m WHERE ${FILTER}
  GROUP BY id, title, subtitle
  UNION ALL
  SELECT ${CALLER} AS id, sourceWorkload AS title, sourceNamespace AS subtitle,
    toInt64(0) AS received, sum(requests) AS sent, toInt64(0) AS failed, toInt64(0) AS refused
  FROM meshlens.requests_rollup_1m WHERE ${FILTER}
  GROUP BY id, title, subtitle
)
GROUP BY id
HAVING mainstat + secondarystat > 0`;
}

export function serviceGraphPanel() {
  return new NodeGraphPanel()
    .title('Service graph')
    .description('Nodes: calling workloads and called services (ring: share of ok, errors, denied). Edges: one per subset, requests as the main figure.')
    .datasource(CH_DS)
    .height(20)
    .span(24)
    .withTarget(chQuery('nodes', nodesSql()))
    .withTarget(chQuery('edges', edgesSql()))
    .overrideByName('arc__ok', [{ id: 'color', value: { mode: 'fixed', fixedColor: 'green' } }])
    .overrideByName('arc__errors', [{ id: 'color', value: { mode: 'fixed', fixedColor: 'red' } }])
    .overrideByName('arc__denied', [{ id: 'color', value: { mode: 'fixed', fixedColor: 'orange' } }]);
}

export function graphDashboard(): Dashboard {
  const b = dashboard(DASHBOARD_UIDS.graph, 'meshlens / Service graph', 'Who calls whom, per subset, with errors and denials, from ClickHouse.');
  for (const v of chVariables()) b.withVariable(v);
  return b.withPanel(serviceGraphPanel()).build();
}
