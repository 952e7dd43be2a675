/**
 * `promtool test rules` unit tests for the generated rules (prometheus/tests/*.test.yml), kept as code
 * because promtool compares every annotation of a firing alert verbatim: the summaries and descriptions
 * below are written out by hand per case (they test the templating), the long runbook text is rendered
 * from the rule itself (its only template is `{{ $labels.x }}`), so editing a runbook needs no test edit.
 *
 * The cases are written for RULE_DEFAULTS (5m rate window, 10m canary window, 5m `for`, 200 requests,
 * 0.5-point margin, z 3.09). Series are counters scraped every minute, `0+N x M` = N more per minute.
 * Values compared exactly go through round() or `bool`, so Prometheus 3's left-open range selectors
 * (one sample fewer per window, extrapolated) give the same answers as 2.x.
 *
 * The input series stand for what the aggregator exports, so their metric and label names come from the metric
 * catalogue; the expected results stay written out, as a test's expectations should.
 */
import { stringify } from 'yaml';
import { LABELS, METRICS } from '../../../lib/catalogue';
import { ALERT_NAMES, RULE_FILE_PATHS, ruleGroups } from './rules';
import type { AlertName, AlertingRule, GeneratedFile } from './rules';

export interface InputSeries {
  series: string;
  values: string;
}

export interface ExpectedAlert {
  labels: Record<string, string>;
  summary: string;
  description: string;
}

export interface ExprCheck {
  expr: string;
  samples: Array<{ labels: string; value: number }>;
}

export interface RuleTestCase {
  name: string;
  series: InputSeries[];
  evalTime: string;
  /** Alerts expected to be firing at evalTime; every alert not named here must not fire. */
  alerts: Partial<Record<AlertName, ExpectedAlert[]>>;
  exprs?: ExprCheck[];
}

const NS = 'bookinfo';
const HOST = (svc: string) => `${svc}.${NS}.svc.cluster.local`;
const SCRAPE = { instance: 'meshlens-0:8080', job: 'meshlens' };
const L = LABELS;

function selector(metric: string, labels: Record<string, string>): string {
  const body = Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ');
  return `${metric}{${body}}`;
}

interface RequestSeriesSpec {
  service?: string;
  subset: string;
  code: number;
  outcome: 'ok' | 'error' | 'denied';
  flags?: string;
  reporter?: 'source' | 'destination';
  source?: string;
}

/** One `meshlens_requests_total` series as the aggregator exposes it (CONTRACT.md §5 plus response_flags). */
function requests(spec: RequestSeriesSpec, values: string): InputSeries {
  const service = spec.service ?? 'reviews';
  return {
    series: selector(METRICS.requests.name, {
      [L.reporter]: spec.reporter ?? 'source',
      [L.sourceWorkload]: spec.source ?? 'productpage-v1',
      [L.sourceWorkloadNamespace]: NS,
      [L.destinationService]: HOST(service),
      [L.destinationServiceName]: service,
      [L.destinationServiceNamespace]: NS,
      [L.destinationSubset]: spec.subset,
      [L.responseCode]: String(spec.code),
      [L.outcome]: spec.outcome,
      [L.responseFlags]: spec.flags ?? '-',
      ...SCRAPE,
    }),
    values,
  };
}

/** A counter growing by `perMinute` every minute for `minutes` minutes. */
const growing = (perMinute: number, minutes = 30) => `0+${perMinute}x${minutes}`;

interface SubsetTraffic {
  subset: string;
  service?: string;
  /** Requests per minute answered without error (200, flags `-`). */
  ok: number;
  /** Application errors per minute (500, flags `-`). */
  appErrors: number;
}

/**
 * A subset's client-side traffic, plus the same requests as the server sidecar reports them (inbound,
 * subset ""): the request rules must read the source reporter only, so the copies change nothing.
 */
function traffic(t: SubsetTraffic): InputSeries[] {
  const out: InputSeries[] = [];
  const service = t.service ?? 'reviews';
  for (const reporter of ['source', 'destination'] as const) {
    const subset = reporter === 'source' ? t.subset : '';
    if (t.ok > 0) out.push(requests({ service, subset, reporter, code: 200, outcome: 'ok' }, growing(t.ok)));
    if (t.appErrors > 0) out.push(requests({ service, subset, reporter, code: 500, outcome: 'error' }, growing(t.appErrors)));
  }
  return out;
}

const REVIEWS = { destination_service_name: 'reviews', destination_service_namespace: NS };

function canaryAlert(subset: string, z: string, ratio: string, others: string): ExpectedAlert {
  return {
    labels: { ...REVIEWS, destination_subset: subset, severity: 'warning' },
    summary: `Subset ${subset} of reviews.${NS} has more application errors than the other subsets`,
    description:
      `Over the last 10m, subset ${subset} of reviews.${NS} answered ${ratio} of its requests with application errors, ` +
      `the other subsets ${others} (one-sided z = ${z} > 3.09 with a margin of 0.5 percentage points; at least 200 requests on each side).`,
  };
}

function outageAlert(ratio: string): ExpectedAlert {
  return {
    labels: { ...REVIEWS, severity: 'critical' },
    summary: `reviews.${NS} answers with application errors on every subset`,
    description:
      `Every subset of reviews.${NS} answered at least ${ratio} of its requests with application errors over the last 5m ` +
      `(threshold 5%; subsets under 1% of the traffic ignored; at least 100 requests in 5m).`,
  };
}

/** A result's labels; Prometheus has no empty-valued labels, so subset "" is no label at all. */
const reviewsSubset = (subset: string, metric = '') =>
  `${metric}{destination_service_name="reviews", destination_service_namespace="${NS}"${subset === '' ? '' : `, destination_subset="${subset}"`}}`;

const Z = 'service_subset:meshlens_requests_app_errors:zscore10m';

/** Canary and outage cases: reviews v1 carries 95 % of the traffic (1900/min), the canary v3 5 % (100/min). */
export const CANARY_CASES: readonly RuleTestCase[] = [
  {
    name: 'a bad canary at 5 % of the traffic (10 % app errors against 1 %) fires MeshCanaryErrorRatioHigh for it only',
    series: [
      ...traffic({ subset: 'v1', ok: 1881, appErrors: 19 }),
      ...traffic({ subset: 'v3', ok: 90, appErrors: 10 }),
      // Client-side traffic whose subset is unknown (""): never a canary, not part of "the other subsets".
      requests({ subset: '', code: 200, outcome: 'ok', source: 'loadtest' }, growing(5)),
      requests({ subset: '', code: 503, outcome: 'error', source: 'loadtest' }, growing(5)),
      // Latency of v3: half the requests within 50 ms, 90 % within 100 ms.
      ...[
        ['0.025', 0],
        ['0.05', 50],
        ['0.1', 90],
        ['+Inf', 100],
      ].map(([le, n]) => ({
        series: selector(`${METRICS.requestDuration.name}_bucket`, {
          [L.reporter]: 'source',
          [L.destinationService]: HOST('reviews'),
          [L.destinationServiceName]: 'reviews',
          [L.destinationServiceNamespace]: NS,
          [L.destinationSubset]: 'v3',
          le: String(le),
          ...SCRAPE,
        }),
        values: growing(Number(n)),
      })),
    ],
    evalTime: '20m',
    alerts: { MeshCanaryErrorRatioHigh: [canaryAlert('v3', '21.9', '10%', '1%')] },
    exprs: [
      {
        expr: 'round(service_subset:meshlens_requests:increase10m{destination_service_name="reviews"})',
        samples: [
          { labels: reviewsSubset('v1'), value: 19000 },
          { labels: reviewsSubset('v3'), value: 1000 },
          { labels: reviewsSubset(''), value: 100 },
        ],
      },
      {
        expr: 'round(service_subset:meshlens_requests_other_subsets:increase10m)',
        samples: [
          { labels: reviewsSubset('v1'), value: 1000 },
          { labels: reviewsSubset('v3'), value: 19000 },
        ],
      },
      {
        expr: 'round(service_subset:meshlens_requests_app_errors_other_subsets:increase10m)',
        samples: [
          { labels: reviewsSubset('v1'), value: 100 },
          { labels: reviewsSubset('v3'), value: 190 },
        ],
      },
      {
        expr: 'service_subset:meshlens_requests_app_errors:zscore10m > bool 3.09',
        samples: [
          { labels: reviewsSubset('v1'), value: 0 },
          { labels: reviewsSubset('v3'), value: 1 },
        ],
      },
      {
        expr: 'service_subset:meshlens_request_duration_seconds:p50_rate5m{destination_subset="v3"}',
        samples: [{ labels: reviewsSubset('v3', 'service_subset:meshlens_request_duration_seconds:p50_rate5m'), value: 0.05 }],
      },
      {
        expr: 'service_subset:meshlens_request_duration_seconds:p99_rate5m{destination_subset="v3"}',
        samples: [{ labels: reviewsSubset('v3', 'service_subset:meshlens_request_duration_seconds:p99_rate5m'), value: 0.1 }],
      },
    ],
  },
  {
    name: 'an equal canary (2 % app errors on both subsets) does not fire',
    series: [...traffic({ subset: 'v1', ok: 1862, appErrors: 38 }), ...traffic({ subset: 'v3', ok: 98, appErrors: 2 })],
    evalTime: '20m',
    alerts: {},
    exprs: [
      {
        expr: 'service_subset:meshlens_requests_app_errors:zscore10m < bool 0',
        samples: [
          { labels: reviewsSubset('v1'), value: 1 },
          { labels: reviewsSubset('v3'), value: 1 },
        ],
      },
    ],
  },
  {
    name: 'a trickle canary (5 requests/min = 50 per window, 80 % app errors) does not fire: minRequests guard',
    series: [...traffic({ subset: 'v1', ok: 1881, appErrors: 19 }), ...traffic({ subset: 'v3', ok: 1, appErrors: 4 })],
    evalTime: '20m',
    alerts: {},
    exprs: [
      // The test alone would fire (z ≈ 50.8); only the minimum sample stops it.
      { expr: 'service_subset:meshlens_requests_app_errors:zscore10m{destination_subset="v3"} > bool 3.09', samples: [{ labels: reviewsSubset('v3'), value: 1 }] },
      { expr: 'round(service_subset:meshlens_requests:increase10m{destination_subset="v3"})', samples: [{ labels: reviewsSubset('v3'), value: 50 }] },
    ],
  },
  {
    name: 'an outage of every subset (100 % app errors) fires MeshServiceErrorRatioHigh, not the canary alert',
    series: [...traffic({ subset: 'v1', ok: 0, appErrors: 1900 }), ...traffic({ subset: 'v3', ok: 0, appErrors: 100 })],
    evalTime: '20m',
    alerts: { MeshServiceErrorRatioHigh: [outageAlert('100%')] },
    exprs: [
      // p = 1: numerator −margin, denominator 0.
      {
        expr: 'service_subset:meshlens_requests_app_errors:zscore10m',
        samples: [
          { labels: reviewsSubset('v1', Z), value: -Infinity },
          { labels: reviewsSubset('v3', Z), value: -Infinity },
        ],
      },
    ],
  },
  {
    name: 'an outage of every subset (50 % app errors) fires MeshServiceErrorRatioHigh, not the canary alert; a healthy trickle subset does not hide it',
    series: [
      ...traffic({ subset: 'v1', ok: 950, appErrors: 950 }),
      ...traffic({ subset: 'v3', ok: 50, appErrors: 50 }),
      // v2 gets 1 request/min (0.05 % of the traffic), all fine: under serviceMinSubsetShare, so not the "min".
      ...traffic({ subset: 'v2', ok: 1, appErrors: 0 }),
    ],
    evalTime: '20m',
    alerts: { MeshServiceErrorRatioHigh: [outageAlert('50%')] },
  },
  {
    name: 'no errors anywhere (p = 0): the z-score is -Inf and nothing fires',
    series: [...traffic({ subset: 'v1', ok: 1900, appErrors: 0 }), ...traffic({ subset: 'v3', ok: 100, appErrors: 0 })],
    evalTime: '20m',
    alerts: {},
    exprs: [
      {
        expr: 'service_subset:meshlens_requests_app_errors:zscore10m',
        samples: [
          { labels: reviewsSubset('v1', Z), value: -Infinity },
          { labels: reviewsSubset('v3', Z), value: -Infinity },
        ],
      },
      {
        expr: 'round(service_subset:meshlens_requests_app_errors:increase10m)',
        samples: [
          { labels: reviewsSubset('v1'), value: 0 },
          { labels: reviewsSubset('v3'), value: 0 },
        ],
      },
    ],
  },
];

/**
 * Mesh failures: reviews v1 and v2 get 1000 requests/min each, 1 % application errors on both; v2 also
 * has 20 % requests the mesh failed (UF,URX / UH / UT). They fire MeshFailureRatioHigh and are no
 * application errors, so v2 is no bad canary and the service no outage.
 */
export const MESH_FAILURE_CASES: readonly RuleTestCase[] = [
  {
    name: 'mesh failures (UF,URX / UH / UT) on one subset fire MeshFailureRatioHigh and are not application errors',
    series: [
      requests({ subset: 'v1', code: 200, outcome: 'ok' }, growing(990)),
      requests({ subset: 'v1', code: 500, outcome: 'error' }, growing(5)),
      // DI (delay injected) is no mesh failure: this 500 is an application error.
      requests({ subset: 'v1', code: 500, outcome: 'error', flags: 'DI' }, growing(5)),
      requests({ subset: 'v2', code: 200, outcome: 'ok' }, growing(785)),
      // A downstream disconnect (DC) is neither.
      requests({ subset: 'v2', code: 0, outcome: 'ok', flags: 'DC' }, growing(5)),
      requests({ subset: 'v2', code: 500, outcome: 'error' }, growing(10)),
      requests({ subset: 'v2', code: 503, outcome: 'error', flags: 'UF,URX' }, growing(120)),
      requests({ subset: 'v2', code: 503, outcome: 'error', flags: 'UH' }, growing(50)),
      requests({ subset: 'v2', code: 504, outcome: 'error', flags: 'UT' }, growing(30)),
    ],
    evalTime: '20m',
    alerts: {
      MeshFailureRatioHigh: [
        {
          labels: { ...REVIEWS, destination_subset: 'v2', severity: 'warning' },
          summary: `The mesh fails requests to reviews.${NS} subset "v2"`,
          description:
            `20% of the requests to reviews.${NS} subset "v2" over the last 5m failed in the mesh itself: Envoy set a failure ` +
            'response flag (UH no healthy upstream, UF upstream connection failure, URX retry limit exceeded, UO upstream ' +
            'overflow (circuit breaker), UT upstream request timeout, UC/UR upstream connection terminated/reset, NR no route, ' +
            'NC no cluster, DF DNS resolution failed). These are not counted as application errors (threshold 5%; at least 100 requests in 5m).',
        },
      ],
    },
    exprs: [
      {
        expr: 'round(service_subset:meshlens_requests_app_errors:increase10m)',
        samples: [
          { labels: reviewsSubset('v1'), value: 100 },
          { labels: reviewsSubset('v2'), value: 100 },
        ],
      },
      {
        expr: 'round(service_subset:meshlens_requests:increase10m)',
        samples: [
          { labels: reviewsSubset('v1'), value: 10000 },
          { labels: reviewsSubset('v2'), value: 10000 },
        ],
      },
      {
        expr: 'round(300 * service:meshlens_requests_mesh_failures:rate5m)',
        samples: [{ labels: `{destination_service_name="reviews", destination_service_namespace="${NS}"}`, value: 1000 }],
      },
    ],
  },
];

function flows(service: string, verdict: 'allowed' | 'denied', values: string, source = 'reviews-v2'): InputSeries {
  return {
    series: selector(METRICS.flows.name, {
      [L.sourceWorkload]: source,
      [L.sourceWorkloadNamespace]: NS,
      [L.destinationService]: HOST(service),
      [L.destinationServiceName]: service,
      [L.destinationServiceNamespace]: NS,
      [L.verdict]: verdict,
      [L.reason]: verdict === 'denied' ? 'network_policy' : '',
      [L.policy]: verdict === 'denied' ? `${NS}/${service}-ingress` : '',
      ...SCRAPE,
    }),
    values,
  };
}

function deniedAlert(service: string, layer: 'L4' | 'L7', rate: string): ExpectedAlert {
  return {
    labels: { destination_service_name: service, destination_service_namespace: NS, layer, severity: 'warning' },
    summary: `Denied ${layer} traffic to ${service}.${NS} jumped`,
    description:
      `${rate} denials/s (${layer}) to ${service}.${NS} over the last 5m, more than 3× the rate of the 1h before (at least 30 ` +
      'denials in 5m). L4 counts flow-log drops (meshlens_flows_total{verdict="denied"}: NetworkPolicy, Cilium, Calico), L7 ' +
      'counts requests refused by AuthorizationPolicy, ext_authz or BlackHoleCluster (meshlens_requests_total{outcome="denied"}).',
  };
}

/** Denied spikes, evaluated at 90m so the 1h baseline (offset 5m) is full. */
export const DENIED_CASES: readonly RuleTestCase[] = [
  {
    name: 'denied spikes fire MeshDeniedFlowsSpike (L4 flows and L7 requests); steady or small denials do not',
    series: [
      // ratings, L4: 2 denials/min for 75 min, then 100/min.
      flows('ratings', 'denied', '0+2x75 250+100x29'),
      flows('ratings', 'allowed', growing(600, 105)),
      // details, L4: a steady 10 denials/min (50 per window, above the floor) for the whole time.
      flows('details', 'denied', growing(10, 105), 'productpage-v1'),
      // productpage, L4: 1/min, then 5/min: five times the baseline but 25 denials per window, under the floor of 30.
      flows('productpage', 'denied', '0+1x75 80+5x29', 'istio-ingressgateway'),
      // reviews, L7: AuthorizationPolicy denials from 80m on, seen by the server sidecar only (the client sees a 403 answer).
      requests({ subset: '', code: 403, outcome: 'denied', reporter: 'destination' }, '_x80 0+50x25'),
      requests({ subset: 'v2', code: 403, outcome: 'ok' }, '_x80 0+50x25'),
    ],
    evalTime: '90m',
    alerts: { MeshDeniedFlowsSpike: [deniedAlert('ratings', 'L4', '1.67'), deniedAlert('reviews', 'L7', '0.83')] },
    exprs: [
      {
        expr: 'round(300 * service_layer:meshlens_denied:rate5m)',
        samples: [
          { labels: `{destination_service_name="details", destination_service_namespace="${NS}", layer="L4"}`, value: 50 },
          { labels: `{destination_service_name="productpage", destination_service_namespace="${NS}", layer="L4"}`, value: 25 },
          { labels: `{destination_service_name="ratings", destination_service_namespace="${NS}", layer="L4"}`, value: 500 },
          { labels: `{destination_service_name="reviews", destination_service_namespace="${NS}", layer="L7"}`, value: 250 },
        ],
      },
    ],
  },
];

function verdict(service: string, subset: string, baseline: string, v: string, values: string, instance: string): InputSeries {
  return {
    series: selector(METRICS.canaryVerdict.name, {
      [L.destinationService]: HOST(service),
      [L.destinationServiceName]: service,
      [L.destinationServiceNamespace]: NS,
      [L.destinationSubset]: subset,
      [L.baselineSubset]: baseline,
      [L.verdict]: v,
      instance,
      job: 'meshlens',
    }),
    values,
  };
}

/** The judge's gauge, exposed identically by two aggregator replicas. */
export const VERDICT_CASES: readonly RuleTestCase[] = [
  {
    name: 'a fail verdict held for 2m fires MeshCanaryVerdictFail once across replicas; pass and a fresh fail do not',
    series: ['meshlens-0:8080', 'meshlens-1:8080'].flatMap((instance) => [
      // reviews v3 against v1: fail all along.
      verdict('reviews', 'v3', 'v1', 'fail', '1x10', instance),
      verdict('reviews', 'v3', 'v1', 'pass', '0x10', instance),
      verdict('reviews', 'v3', 'v1', 'inconclusive', '0x10', instance),
      // ratings v2 against v1: inconclusive, then fail from 4m on (pending at 5m, not yet firing).
      verdict('ratings', 'v2', 'v1', 'fail', '0 0 0 0 1 1 1 1 1 1 1', instance),
      verdict('ratings', 'v2', 'v1', 'pass', '0x10', instance),
      verdict('ratings', 'v2', 'v1', 'inconclusive', '1 1 1 1 0 0 0 0 0 0 0', instance),
    ]),
    evalTime: '5m',
    alerts: {
      MeshCanaryVerdictFail: [
        {
          labels: { ...REVIEWS, destination_subset: 'v3', baseline_subset: 'v1', severity: 'warning' },
          summary: `meshlens judges canary v3 of reviews.${NS} as failed`,
          description:
            `meshlens's canary judge (meshlens_canary_verdict) says "fail" for subset v3 of reviews.${NS} against baseline v1: ` +
            "its error ratio is above the baseline's by more than the margin with high confidence.",
        },
      ],
    },
  },
];

export const RULE_TEST_FILE_PATHS = Object.freeze({
  canary: 'prometheus/tests/meshlens-canary.test.yml',
  meshFailures: 'prometheus/tests/meshlens-mesh-failures.test.yml',
  denied: 'prometheus/tests/meshlens-denied.test.yml',
  verdict: 'prometheus/tests/meshlens-verdict.test.yml',
});

/** `{{ $labels.x }}` only; anything else in a runbook would need Prometheus to render it. */
export function renderLabelTemplate(template: string, labels: Record<string, string>): string {
  const out = template.replace(/\{\{ \$labels\.([A-Za-z_][A-Za-z0-9_]*) \}\}/g, (_, k: string) => labels[k] ?? '');
  if (out.includes('{{')) throw new Error(`template needs more than $labels: ${template.slice(out.indexOf('{{'), 80)}`);
  return out;
}

function testFile(cases: readonly RuleTestCase[], alertRules: ReadonlyMap<string, AlertingRule>): string {
  const relative = (p: string) => `../${p.slice('prometheus/'.length)}`;
  const doc = {
    rule_files: [relative(RULE_FILE_PATHS.recording), relative(RULE_FILE_PATHS.alerts)],
    evaluation_interval: '1m',
    tests: cases.map((c) => ({
      name: c.name,
      interval: '1m',
      input_series: c.series,
      alert_rule_test: ALERT_NAMES.map((alertname) => ({
        eval_time: c.evalTime,
        alertname,
        exp_alerts: (c.alerts[alertname] ?? []).map((a) => ({
          exp_labels: a.labels,
          exp_annotations: {
            summary: a.summary,
            description: a.description,
            runbook: renderLabelTemplate((alertRules.get(alertname) as AlertingRule).annotations.runbook, a.labels),
          },
        })),
      })),
      ...(c.exprs
        ? {
            promql_expr_test: c.exprs.map((e) => ({
              expr: e.expr,
              eval_time: c.evalTime,
              exp_samples: e.samples.map((s) => ({ labels: s.labels, value: s.value })),
            })),
          }
        : {}),
    })),
  };
  return (
    '# generated by npm run provision; do not edit\n# source: services/provisioner/prometheus/rule-tests.ts\n' +
    '# run: promtool test rules prometheus/tests/*.test.yml\n' +
    stringify(doc, { lineWidth: 0 })
  );
}

/** The promtool unit-test files for the committed (default) rules. */
export function prometheusRuleTestFiles(): GeneratedFile[] {
  const alertRules = new Map<string, AlertingRule>();
  for (const g of ruleGroups().alerts) for (const r of g.rules) if ('alert' in r) alertRules.set(r.alert, r);
  return [
    { path: RULE_TEST_FILE_PATHS.canary, content: testFile(CANARY_CASES, alertRules) },
    { path: RULE_TEST_FILE_PATHS.meshFailures, content: testFile(MESH_FAILURE_CASES, alertRules) },
    { path: RULE_TEST_FILE_PATHS.denied, content: testFile(DENIED_CASES, alertRules) },
    { path: RULE_TEST_FILE_PATHS.verdict, content: testFile(VERDICT_CASES, alertRules) },
  ];
}
