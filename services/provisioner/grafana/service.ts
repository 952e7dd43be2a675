/**
 * Service detail: how do the subsets of one service compare? Observed traffic share beside the configured weight, error ratio beside the baseline's,
 * latency percentiles, response codes and flags, mesh failures apart from application 5xx.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { StackingConfigBuilder, StackingMode } from '@grafana/grafana-foundation-sdk/common';
import { RowBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { LABELS, METRICS } from '../../../lib/catalogue';
import { meshFailureFlagsRegex } from '../prometheus/rules';
import { subsetLinks } from './overview';
import { DASHBOARD_UIDS, RATE, dashboard, promQuery, promSelector, promVariables, timeseries } from './panels';

const L = LABELS;
const SERVICE = `${L.destinationServiceNamespace}, ${L.destinationServiceName}`;
const BY_SUBSET = `${SERVICE}, ${L.destinationSubset}`;
const REQUESTS = METRICS.requests.name;
const LEGEND = `{{${L.destinationServiceName}}} {{${L.destinationSubset}}}`;
const rate = (extra: string[] = [], subset = true) => `rate(${REQUESTS}${promSelector(extra, { subset })}[${RATE}])`;

export function trafficSharePanel() {
  // One configured weight per subset: its share of the service's default route (the catalogue's help says why).
  const configured = `max by (${BY_SUBSET}) (${METRICS.subsetConfiguredWeight.name}${promSelector([], { reporter: null })})`;
  return timeseries(
    'Traffic share by subset: observed beside configured weight',
    'Solid: share of the service\'s client-side requests each subset answered. Dashed: the subset\'s configured weight in the default route (the first without match conditions) of its VirtualService, from the mesh config. Traffic that match-conditioned routes send (headers, users) makes the two differ by design.',
    'percentunit',
  )
    .withTarget(promQuery('A', `sum by (${BY_SUBSET}) (${rate()})\n/ on (${SERVICE}) group_left ()\nsum by (${SERVICE}) (${rate([], false)})`, `observed ${LEGEND}`))
    .withTarget(promQuery('B', configured, `configured ${LEGEND}`))
    .overrideByQuery('B', [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }])
    .dataLinks(subsetLinks());
}

/** Error ratio per subset, keyed by subset; `subset: false` for the baselines, which the subset selection must not hide. */
const ratioBySubset = (subset = true) =>
  `sum by (${BY_SUBSET}) (${rate([`${L.outcome}="error"`], subset)})\n/\nsum by (${BY_SUBSET}) (${rate([], subset)})`;

export function errorRatioVsBaselinePanel() {
  // The baseline of each canary is the judge's (meshlens_canary_verdict{baseline_subset}): the baseline's ratio is
  // re-keyed by baseline_subset and joined onto every subset judged against it.
  const baselineRatio =
    `max by (${SERVICE}, ${L.baselineSubset}) (label_replace(${ratioBySubset(false).replace(/\n/g, ' ')}, "${L.baselineSubset}", "$1", "${L.destinationSubset}", "(.+)"))\n` +
    `* on (${SERVICE}, ${L.baselineSubset}) group_right ()\n` +
    `max by (${BY_SUBSET}, ${L.baselineSubset}) (${METRICS.canaryVerdict.name}{${L.destinationServiceNamespace}=~"$namespace", ${L.destinationServiceName}=~"$service", ${L.destinationSubset}=~"$subset"} == 1)`;
  return timeseries('Error ratio by subset, beside its baseline', 'Dashed: the error ratio of the subset the canary judge compares it with.', 'percentunit')
    .withTarget(promQuery('A', ratioBySubset(), LEGEND))
    .withTarget(promQuery('B', baselineRatio, `baseline {{${L.baselineSubset}}} of {{${L.destinationSubset}}}`))
    .overrideByQuery('B', [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }])
    .dataLinks(subsetLinks());
}

export function latencyPercentilesPanel() {
  const q = (refId: string, p: number) =>
    promQuery(
      refId,
      `histogram_quantile(${p}, sum by (${BY_SUBSET}, le) (rate(${METRICS.requestDuration.name}_bucket${promSelector()}[${RATE}])))`,
      `p${Math.round(p * 100)} ${LEGEND}`,
    );
  return timeseries('Latency percentiles by subset', 'p50, p90 and p99 as the client saw them.', 's').withTarget(q('A', 0.5)).withTarget(q('B', 0.9)).withTarget(q('C', 0.99));
}

export function responseCodesPanel() {
  return timeseries('Response codes by subset', 'Requests per second per HTTP status (0: no response).', 'reqps')
    .withTarget(promQuery('A', `sum by (${L.destinationSubset}, ${L.responseCode}) (${rate()})`, `{{${L.destinationSubset}}} {{${L.responseCode}}}`))
    .stacking(new StackingConfigBuilder().mode(StackingMode.Normal));
}

export function responseFlagsPanel() {
  return timeseries('Response flags by subset', 'Envoy response flags other than "-" (none): UH, UF, UO, URX, NR, DC...', 'reqps').withTarget(
    promQuery('A', `sum by (${L.destinationSubset}, ${L.responseFlags}) (${rate([`${L.responseFlags}!="-"`])})`, `{{${L.destinationSubset}}} {{${L.responseFlags}}}`),
  );
}

export function meshVsAppPanel() {
  const mesh = meshFailureFlagsRegex();
  return timeseries(
    'Mesh failures apart from application 5xx',
    'Application errors: outcome="error" without a mesh-failure flag (the workload answered 5xx). Mesh failures: a flag saying the proxy could not reach or keep the upstream.',
    'reqps',
  )
    .withTarget(promQuery('A', `sum by (${L.destinationSubset}) (${rate([`${L.outcome}="error"`, `${L.responseFlags}!~"${mesh}"`])})`, `application {{${L.destinationSubset}}}`))
    .withTarget(promQuery('B', `sum by (${L.destinationSubset}) (${rate([`${L.outcome}!="denied"`, `${L.responseFlags}=~"${mesh}"`])})`, `mesh {{${L.destinationSubset}}}`));
}

export function serviceDashboard(): Dashboard {
  const b = dashboard(DASHBOARD_UIDS.service, 'meshlens / Service detail', 'The subsets of one service side by side.');
  for (const v of promVariables()) b.withVariable(v);
  return b
    .withRow(new RowBuilder('Traffic'))
    .withPanel(trafficSharePanel())
    .withPanel(errorRatioVsBaselinePanel())
    .withPanel(latencyPercentilesPanel())
    .withPanel(responseCodesPanel())
    .withRow(new RowBuilder('Failures'))
    .withPanel(responseFlagsPanel())
    .withPanel(meshVsAppPanel())
    .build();
}
