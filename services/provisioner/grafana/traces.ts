/**
 * Traces: which traces went through this service and subset, one click from Jaeger. The subset panels of the
 * other dashboards link here with the service and subset set. The span list comes from ClickHouse's raw spans
 * (they carry the subset from the upstream cluster, which Jaeger's tags only hold as a full cluster name); each
 * trace id opens the trace in the Jaeger datasource.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { RowBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { DATASOURCES } from './datasources';
import { CH_DS, DASHBOARD_UIDS, JAEGER_DS, VARS, chQuery, chVariables, dashboard, datasourceVariable, jaegerSearch, sqlIn, table } from './panels';

/** A Grafana internal data link: opens `${__value.raw}` as a trace id query of the Jaeger datasource in Explore. */
export function jaegerTraceLink() {
  return {
    title: 'Open trace in Jaeger',
    url: '',
    internal: { datasourceUid: DATASOURCES.jaeger.uid, datasourceName: DATASOURCES.jaeger.name, query: { query: '${__value.raw}' } },
  };
}

export function tracesSql(): string {
  return `
SELECT traceId, min(timestamp) AS start, any(serviceName) AS caller, any(destinationService) AS service, any(destinationSubset) AS subset,
  max(durationMs) AS duration_ms, max(error) AS failed, count() AS spans
FROM meshlens.spans
WHERE $__timeFilter(timestamp) AND kind = 'client' AND destinationService != ''
  AND ${sqlIn('destinationNamespace', VARS.namespace)} AND ${sqlIn('destinationService', VARS.service)} AND ${sqlIn('destinationSubset', VARS.subset)}
GROUP BY traceId
ORDER BY failed DESC, start DESC
LIMIT 100`;
}

export function subsetTracesPanel() {
  return table('Traces through the selected service and subset', 'Client spans to the destination, errors first; click a trace id to open it in Jaeger.')
    .datasource(CH_DS)
    .withTarget(chQuery('A', tracesSql()))
    .overrideByName('traceId', [{ id: 'links', value: [jaegerTraceLink()] }]);
}

export function jaegerSearchPanel() {
  // Istio names a proxy's spans `<service>.<namespace>`; Jaeger searches one service, so pick one of each.
  return table('Jaeger search', 'Traces of the selected service as Jaeger stores them (select one service and one namespace).')
    .datasource(JAEGER_DS)
    .withTarget(jaegerSearch('A', `\${${VARS.service}}.\${${VARS.namespace}}`, ''));
}

export function tracesDashboard(): Dashboard {
  const b = dashboard(DASHBOARD_UIDS.traces, 'meshlens / Traces', 'Traces by service and subset, opened in Jaeger.');
  for (const v of chVariables()) b.withVariable(v);
  b.withVariable(datasourceVariable(VARS.jaeger, DATASOURCES.jaeger.type, DATASOURCES.jaeger.name, DATASOURCES.jaeger.uid));
  return b.withRow(new RowBuilder('Traces')).withPanel(subsetTracesPanel()).withPanel(jaegerSearchPanel()).build();
}
