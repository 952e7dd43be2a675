/** Canary: is the canary worse than its baseline? The judge's verdicts over time, canary against baseline, alert annotations. */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { AnnotationQueryBuilder, MappingType, RowBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as StateTimelinePanel } from '@grafana/grafana-foundation-sdk/statetimeline';
import { LABELS, METRICS } from '../../../lib/catalogue';
import { ALERT_NAMES } from '../prometheus/rules';
import { subsetLinks } from './overview';
import { DASHBOARD_UIDS, PROM_DS, RATE, dashboard, promQuery, promSelector, promVariables, timeseries } from './panels';

const L = LABELS;
const SERVICE = `${L.destinationServiceNamespace}, ${L.destinationServiceName}`;
const JUDGED = `${SERVICE}, ${L.destinationSubset}, ${L.baselineSubset}`;
const VERDICT = METRICS.canaryVerdict.name;
const verdictSel = (extra = '') =>
  `${VERDICT}{${L.destinationServiceNamespace}=~"$namespace", ${L.destinationServiceName}=~"$service", ${L.destinationSubset}=~"$subset"${extra}}`;
/** Verdict as a number for the state timeline: pass 0, inconclusive 1, fail 2 (the value mappings name them). */
const VERDICT_CODES = [
  ['pass', 0, 'green'],
  ['inconclusive', 1, 'yellow'],
  ['fail', 2, 'red'],
] as const;
const JUDGED_LEGEND = `{{${L.destinationServiceName}}} {{${L.destinationSubset}}} vs {{${L.baselineSubset}}}`;

export function verdictTimelinePanel() {
  const expr = VERDICT_CODES.map(([v, code]) => `${code} * max by (${JUDGED}) (${verdictSel(`, ${L.verdict}="${v}"`)} == 1)`).join('\nor\n');
  return new StateTimelinePanel()
    .title('Canary verdicts over time')
    .description('The judge\'s verdict for each subset against its baseline (meshlens_canary_verdict): pass, inconclusive (too little traffic or evidence) or fail.')
    .datasource(PROM_DS)
    .height(8)
    .span(24)
    .withTarget(promQuery('A', expr, JUDGED_LEGEND))
    .mappings([
      {
        type: MappingType.ValueToText,
        options: Object.fromEntries(VERDICT_CODES.map(([v, code, color]) => [String(code), { text: v, color }])),
      },
    ]);
}

/** `metric` of every subset judged against a baseline (A) and of that baseline (B), keyed by the judged subset. */
function againstBaseline(bySubset: string) {
  const judged = `max by (${JUDGED}) (${verdictSel()} == 1)`;
  const canary = `${bySubset}\n* on (${SERVICE}, ${L.destinationSubset}) group_right ()\n${judged}`;
  const baseline =
    `max by (${SERVICE}, ${L.baselineSubset}) (label_replace(${bySubset.replace(/\n/g, ' ')}, "${L.baselineSubset}", "$1", "${L.destinationSubset}", "(.+)"))\n` +
    `* on (${SERVICE}, ${L.baselineSubset}) group_right ()\n${judged}`;
  return { canary, baseline };
}

export function canaryErrorRatioPanel() {
  const by = `${SERVICE}, ${L.destinationSubset}`;
  const ratio = `(sum by (${by}) (rate(${METRICS.requests.name}${promSelector([`${L.outcome}="error"`], { subset: false })}[${RATE}]))\n/\nsum by (${by}) (rate(${METRICS.requests.name}${promSelector([], { subset: false })}[${RATE}])))`;
  const { canary, baseline } = againstBaseline(ratio);
  return timeseries('Error ratio: canary against baseline', 'Each judged subset (solid) and the baseline it is judged against (dashed).', 'percentunit')
    .withTarget(promQuery('A', canary, `{{${L.destinationSubset}}}`))
    .withTarget(promQuery('B', baseline, `baseline {{${L.baselineSubset}}} (for {{${L.destinationSubset}}})`))
    .overrideByQuery('B', [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }])
    .dataLinks(subsetLinks());
}

export function canaryLatencyPanel() {
  const by = `${SERVICE}, ${L.destinationSubset}`;
  const p99 = `histogram_quantile(0.99, sum by (${by}, le) (rate(${METRICS.requestDuration.name}_bucket${promSelector([], { subset: false })}[${RATE}])))`;
  const { canary, baseline } = againstBaseline(p99);
  return timeseries('p99 latency: canary against baseline', 'Each judged subset (solid) and its baseline (dashed).', 's')
    .withTarget(promQuery('A', canary, `{{${L.destinationSubset}}}`))
    .withTarget(promQuery('B', baseline, `baseline {{${L.baselineSubset}}} (for {{${L.destinationSubset}}})`))
    .overrideByQuery('B', [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }])
    .dataLinks(subsetLinks());
}

/** Canary alerts of the generated rules, as annotations: Prometheus keeps them as the ALERTS series. */
export const CANARY_ALERTS = ALERT_NAMES.filter((a) => a.startsWith('MeshCanary'));
export function canaryAlertAnnotation() {
  return new AnnotationQueryBuilder()
    .name('Canary alerts')
    .datasource(PROM_DS)
    .enable(true)
    .iconColor('red')
    .expr(
      `ALERTS{alertname=~"${CANARY_ALERTS.join('|')}", alertstate="firing", ${L.destinationServiceNamespace}=~"$namespace", ${L.destinationServiceName}=~"$service", ${L.destinationSubset}=~"$subset"}`,
    )
    .step('1m')
    .titleFormat('{{alertname}}')
    .textFormat(`{{${L.destinationServiceName}}} {{${L.destinationSubset}}}`)
    .tagKeys(`${L.destinationServiceName},${L.destinationSubset}`);
}

export function canaryDashboard(): Dashboard {
  const b = dashboard(DASHBOARD_UIDS.canary, 'meshlens / Canary', 'The canary judge\'s verdicts and each canary against its baseline, with the canary alerts.');
  for (const v of promVariables()) b.withVariable(v);
  return b
    .annotation(canaryAlertAnnotation())
    .withRow(new RowBuilder('Verdicts'))
    .withPanel(verdictTimelinePanel())
    .withRow(new RowBuilder('Canary against baseline'))
    .withPanel(canaryErrorRatioPanel())
    .withPanel(canaryLatencyPanel())
    .build();
}
