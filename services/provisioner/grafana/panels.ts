/**
 * Shared defaults of the generated dashboards (issue 11 item 2): the datasource references, the template
 * variables every dashboard shares, the query builders the SDK lacks (ClickHouse, Jaeger) and one constructor
 * per panel kind, so a dashboard file says what a panel shows and not how Grafana lays it out.
 *
 * Every label and metric name comes from lib/catalogue: a label renamed there is renamed in every panel.
 */
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import type * as common from '@grafana/grafana-foundation-sdk/common';
import {
  DashboardBuilder,
  DashboardCursorSync,
  DashboardLinkBuilder,
  DashboardLinkType,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  VariableRefresh,
  VariableSort,
} from '@grafana/grafana-foundation-sdk/dashboard';
import type { DashboardLink } from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder as PromQueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import { LABELS, METRICS } from '../../../lib/catalogue';
import { DATASOURCES } from './datasources';

/** Dashboard uids: stable, so links, bookmarks and the provider's updates survive a regeneration. */
export const DASHBOARD_UIDS = Object.freeze({
  overview: 'meshlens-overview',
  service: 'meshlens-service',
  canary: 'meshlens-canary',
  flows: 'meshlens-flows',
  graph: 'meshlens-graph',
  traces: 'meshlens-traces',
});

export const TAG = 'meshlens';

/** Template variable names. Panels reference them as `$name`; the tests expand them as Grafana does. */
export const VARS = Object.freeze({
  prometheus: 'datasource',
  clickhouse: 'clickhouse',
  jaeger: 'jaeger',
  namespace: 'namespace',
  service: 'service',
  subset: 'subset',
});

/**
 * The value of an "All" selection. Grafana inserts a custom all value as it is, unformatted, in PromQL and SQL alike;
 * `.*` matches every value in a PromQL regex matcher (the empty subset too), and the SQL filters test for `__all__`.
 */
export const PROM_ALL = '.*';
export const SQL_ALL = "'__all__'";

export const PROM_DS: common.DataSourceRef = { type: DATASOURCES.prometheus.type, uid: `\${${VARS.prometheus}}` };
export const CH_DS: common.DataSourceRef = { type: DATASOURCES.clickhouse.type, uid: `\${${VARS.clickhouse}}` };
export const JAEGER_DS: common.DataSourceRef = { type: DATASOURCES.jaeger.type, uid: `\${${VARS.jaeger}}` };

const L = LABELS;

/** `{reporter="source", namespace, service, subset from the variables}` plus extra matchers. */
export function promSelector(extra: string[] = [], opts: { subset?: boolean; reporter?: string | null } = {}): string {
  const m = [
    ...(opts.reporter === null ? [] : [`${L.reporter}="${opts.reporter ?? 'source'}"`]),
    `${L.destinationServiceNamespace}=~"$${VARS.namespace}"`,
    `${L.destinationServiceName}=~"$${VARS.service}"`,
    ...(opts.subset === false ? [] : [`${L.destinationSubset}=~"$${VARS.subset}"`]),
    ...extra,
  ];
  return `{${m.join(', ')}}`;
}

/** Grafana's rate window: at least four scrapes, so a rate never rests on one sample. */
export const RATE = '$__rate_interval';

export function promQuery(refId: string, expr: string, legend: string): PromQueryBuilder {
  return new PromQueryBuilder().refId(refId).expr(expr).legendFormat(legend).datasource(PROM_DS);
}

/**
 * A grafana-clickhouse-datasource query (plugin v4: `editorType: sql`, `queryType` `table` or `timeSeries`,
 * src/types/sql.ts of grafana/clickhouse-datasource). The SDK has no builder for third-party datasources; its
 * extension point is any cog.Builder of a cog.Dataquery.
 */
export interface ClickHouseQuery extends cog.Dataquery {
  refId: string;
  datasource: common.DataSourceRef;
  editorType: 'sql';
  queryType: 'table' | 'timeSeries';
  rawSql: string;
  format?: number;
}

export function chQuery(refId: string, rawSql: string, queryType: ClickHouseQuery['queryType'] = 'table'): cog.Builder<ClickHouseQuery> {
  const q: ClickHouseQuery = {
    refId,
    datasource: CH_DS,
    editorType: 'sql',
    queryType,
    rawSql: rawSql.trim(),
    _implementsDataqueryVariant() {},
  };
  return { build: () => q };
}

/** A Jaeger datasource search (Grafana's jaeger plugin: `queryType: search` with service, operation, tags in logfmt). */
export interface JaegerQuery extends cog.Dataquery {
  refId: string;
  datasource: common.DataSourceRef;
  queryType: 'search';
  service: string;
  tags?: string;
  limit?: number;
}

export function jaegerSearch(refId: string, service: string, tags: string): cog.Builder<JaegerQuery> {
  const q: JaegerQuery = { refId, datasource: JAEGER_DS, queryType: 'search', service, tags, limit: 50, _implementsDataqueryVariant() {} };
  return { build: () => q };
}

/** `x IN (...)` unless the variable is All: Grafana writes `${v:singlequote}` as `'a','b'`, All as SQL_ALL. */
export function sqlIn(column: string, variable: string): string {
  return `(${SQL_ALL} IN (\${${variable}:singlequote}) OR ${column} IN (\${${variable}:singlequote}))`;
}

export function timeseries(title: string, description: string, unit: string): TimeseriesPanel {
  return new TimeseriesPanel().title(title).description(description).unit(unit).height(8).span(12).datasource(PROM_DS).fillOpacity(10).lineWidth(1);
}

export function table(title: string, description: string): TablePanel {
  return new TablePanel().title(title).description(description).height(9).span(24);
}

export function datasourceVariable(name: string, type: string, label: string, uid: string): DatasourceVariableBuilder {
  // `current` is the provisioned datasource, so a fresh load queries it without anyone picking one.
  return new DatasourceVariableBuilder(name).label(label).type(type).current({ text: label, value: uid });
}

function promLabelVariable(name: string, label: string, labelName: string, selector: string): QueryVariableBuilder {
  return new QueryVariableBuilder(name)
    .label(label)
    .datasource(PROM_DS)
    .query(`label_values(${METRICS.requests.name}${selector}, ${labelName})`)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .includeAll(true)
    .allValue(PROM_ALL)
    .multi(true)
    .current({ text: 'All', value: '$__all' });
}

/** datasource, namespace, service and subset, each narrowing the next. */
export function promVariables(): (DatasourceVariableBuilder | QueryVariableBuilder)[] {
  const ns = `{${L.destinationServiceNamespace}=~"$${VARS.namespace}"}`;
  const svc = `{${L.destinationServiceNamespace}=~"$${VARS.namespace}", ${L.destinationServiceName}=~"$${VARS.service}"}`;
  return [
    datasourceVariable(VARS.prometheus, DATASOURCES.prometheus.type, DATASOURCES.prometheus.name, DATASOURCES.prometheus.uid),
    promLabelVariable(VARS.namespace, 'Namespace', L.destinationServiceNamespace, ''),
    promLabelVariable(VARS.service, 'Service', L.destinationServiceName, ns),
    promLabelVariable(VARS.subset, 'Subset', L.destinationSubset, svc),
  ];
}

function chVariable(name: string, label: string, column: string, where: string): QueryVariableBuilder {
  return new QueryVariableBuilder(name)
    .label(label)
    .datasource(CH_DS)
    .query(`SELECT DISTINCT ${column} FROM meshlens.requests_rollup_1m WHERE $__timeFilter(minute)${where} ORDER BY ${column}`)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .includeAll(true)
    .allValue(SQL_ALL)
    .multi(true)
    .current({ text: 'All', value: '$__all' });
}

/** The same four variables over ClickHouse, for the dashboards that read the rollups. */
export function chVariables(): (DatasourceVariableBuilder | QueryVariableBuilder)[] {
  return [
    datasourceVariable(VARS.clickhouse, DATASOURCES.clickhouse.type, DATASOURCES.clickhouse.name, DATASOURCES.clickhouse.uid),
    chVariable(VARS.namespace, 'Namespace', 'destinationNamespace', " AND destinationNamespace != ''"),
    chVariable(VARS.service, 'Service', 'destinationService', ` AND ${sqlIn('destinationNamespace', VARS.namespace)}`),
    chVariable(
      VARS.subset,
      'Subset',
      'destinationSubset',
      ` AND ${sqlIn('destinationNamespace', VARS.namespace)} AND ${sqlIn('destinationService', VARS.service)}`,
    ),
  ];
}

/** Links in every dashboard's header to the others, keeping the time range and the variables. */
function dashboardLinks(): DashboardLinkBuilder[] {
  return [new DashboardLinkBuilder('meshlens').type(DashboardLinkType.Dashboards).tags([TAG]).asDropdown(true).includeVars(true).keepTime(true)];
}

export function dashboard(uid: string, title: string, description: string): DashboardBuilder {
  return new DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags([TAG])
    .editable()
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .timezone('browser')
    .tooltip(DashboardCursorSync.Crosshair)
    .links(dashboardLinks());
}

/** A link to another generated dashboard, carrying the time range and the series' own labels as variables. */
export function linkTo(title: string, uid: string, vars: Record<string, string>): cog.Builder<DashboardLink> {
  const q = Object.entries(vars)
    .map(([k, v]) => `var-${k}=${v}`)
    .join('&');
  return new DashboardLinkBuilder(title).type(DashboardLinkType.Link).url(`/d/${uid}?\${__url_time_range}${q ? `&${q}` : ''}`);
}

/** Field-label interpolation in data links: `${__field.labels.x}`. */
export const fieldLabel = (label: string): string => `\${__field.labels.${label}}`;
