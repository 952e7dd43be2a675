/** Mesh overview: is anything in the mesh unhealthy, and where? RPS, error ratio and p99 per service and subset, denials, mesh failures. */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { RowBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { LABELS, METRICS } from '../../../lib/catalogue';
import { meshFailureFlagsRegex } from '../prometheus/rules';
import { DASHBOARD_UIDS, RATE, VARS, dashboard, fieldLabel, linkTo, promQuery, promSelector, promVariables, timeseries } from './panels';

const L = LABELS;
const BY_SUBSET = `${L.destinationServiceNamespace}, ${L.destinationServiceName}, ${L.destinationSubset}`;
const BY_SERVICE = `${L.destinationServiceNamespace}, ${L.destinationServiceName}`;
const SUBSET_LEGEND = `{{${L.destinationServiceName}}}.{{${L.destinationServiceNamespace}}} {{${L.destinationSubset}}}`;
const REQUESTS = METRICS.requests.name;

/** From a subset's series to its service detail and to its traces. */
export function subsetLinks() {
  const vars = {
    [VARS.namespace]: fieldLabel(L.destinationServiceNamespace),
    [VARS.service]: fieldLabel(L.destinationServiceName),
    [VARS.subset]: fieldLabel(L.destinationSubset),
  };
  return [
    linkTo('Service detail of ${__field.labels.destination_service_name}', DASHBOARD_UIDS.service, vars),
    linkTo('Traces of ${__field.labels.destination_service_name} ${__field.labels.destination_subset}', DASHBOARD_UIDS.traces, vars),
  ];
}

export function requestRatePanel() {
  return timeseries('Requests per second by service and subset', 'Client-side (reporter="source") request rate: the client knows the subset it was routed to.', 'reqps')
    .withTarget(promQuery('A', `sum by (${BY_SUBSET}) (rate(${REQUESTS}${promSelector()}[${RATE}]))`, SUBSET_LEGEND))
    .dataLinks(subsetLinks());
}

export function errorRatioPanel() {
  return timeseries(
    'Error ratio by service and subset',
    'Share of requests with outcome="error" (5xx, or no response with an upstream-failure flag). Denials are not errors: see the denials panel.',
    'percentunit',
  )
    .withTarget(
      promQuery(
        'A',
        `sum by (${BY_SUBSET}) (rate(${REQUESTS}${promSelector([`${L.outcome}="error"`])}[${RATE}]))\n/\n` +
          `sum by (${BY_SUBSET}) (rate(${REQUESTS}${promSelector()}[${RATE}]))`,
        SUBSET_LEGEND,
      ),
    )
    .dataLinks(subsetLinks());
}

export function p99Panel() {
  return timeseries('p99 latency by service and subset', 'From the duration histogram, client side, in Istio\'s buckets.', 's')
    .withTarget(
      promQuery(
        'A',
        `histogram_quantile(0.99, sum by (${BY_SUBSET}, le) (rate(${METRICS.requestDuration.name}_bucket${promSelector()}[${RATE}])))`,
        SUBSET_LEGEND,
      ),
    )
    .dataLinks(subsetLinks());
}

export function denialsPanel() {
  // The larger of the two reporters, never their sum: an RBAC denial only the server logs, a BlackHoleCluster only
  // the client (as the generated rules do); Calico and Hubble report one connection from both nodes.
  return timeseries('Denials per second by service', 'L7: requests denied by AuthorizationPolicy, ext_authz or BlackHoleCluster; L4: flows dropped by policy.', 'reqps')
    .withTarget(
      promQuery(
        'A',
        `max by (${BY_SERVICE}) (sum by (${BY_SERVICE}, ${L.reporter}) (rate(${REQUESTS}${promSelector([`${L.outcome}="denied"`], { reporter: null, subset: false })}[${RATE}])))`,
        `L7 {{${L.destinationServiceName}}}.{{${L.destinationServiceNamespace}}}`,
      ),
    )
    .withTarget(
      promQuery(
        'B',
        `max by (${BY_SERVICE}, ${L.reason}) (sum by (${BY_SERVICE}, ${L.reason}, ${L.reporter}) (rate(${METRICS.flows.name}${promSelector([`${L.verdict}="denied"`], { reporter: null, subset: false })}[${RATE}])))`,
        `L4 {{${L.destinationServiceName}}}.{{${L.destinationServiceNamespace}}} {{${L.reason}}}`,
      ),
    );
}

export function meshFailuresPanel() {
  return timeseries(
    'Mesh failures per second by subset and flag',
    'Failures the proxies generated (no healthy upstream, connection failure, overflow, timeout...), apart from application 5xx.',
    'reqps',
  )
    .withTarget(
      promQuery(
        'A',
        `sum by (${BY_SUBSET}, ${L.responseFlags}) (rate(${REQUESTS}${promSelector([`${L.outcome}!="denied"`, `${L.responseFlags}=~"${meshFailureFlagsRegex()}"`])}[${RATE}]))`,
        `${SUBSET_LEGEND} {{${L.responseFlags}}}`,
      ),
    )
    .dataLinks(subsetLinks());
}

export function overviewDashboard(): Dashboard {
  const b = dashboard(DASHBOARD_UIDS.overview, 'meshlens / Mesh overview', 'Rate, errors and latency of every service and subset, denials and mesh failures.');
  for (const v of promVariables()) b.withVariable(v);
  return b
    .withRow(new RowBuilder('Traffic'))
    .withPanel(requestRatePanel())
    .withPanel(errorRatioPanel())
    .withPanel(p99Panel())
    .withRow(new RowBuilder('Denials and mesh failures'))
    .withPanel(denialsPanel())
    .withPanel(meshFailuresPanel())
    .build();
}
