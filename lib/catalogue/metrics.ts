/**
 * Every metric meshlens exports on `/metrics`: name, type, help text, label names in exposition order, and the
 * values a label can take where they are a closed set (issue 11, item 1). The aggregator, the canary judge, the
 * pipeline gauges and the rule generator read their names and label lists from here, so a label renamed here is
 * renamed in the exposition, the rules and (soon) the dashboards at once; test/metrics-catalogue.e2e.test.ts
 * checks the running process against this list in both directions.
 *
 * The names, labels and values are a published interface (Prometheus queries, alert rules and dashboards of users
 * depend on them): change one only as a deliberate, documented break.
 *
 * Pure data, no prom-client: the rule generator and the dashboards import it without a registry.
 */
import { REJECT_REASONS } from '../model';
import type { DenyReason, FlowVerdict, IngestFormat, Outcome, Reporter } from '../model';

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec<L extends string = string> {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  /** In exposition order. */
  readonly labelNames: readonly L[];
  /**
   * The values of the labels that have a closed set. A label missing here takes open values (workloads,
   * hosts, response codes, table and topic names...), bounded by MESHLENS_MAX_SERIES where a request picks them.
   */
  readonly labelValues: Readonly<Partial<Record<L, readonly string[]>>>;
  /** Histogram bucket bounds (`le`), for histograms only. */
  readonly buckets?: readonly number[];
}

/**
 * Label names. Istio's own names where Istio has the label (`istio_requests_total`), so PromQL and dashboards
 * written for Istio's metrics carry over; `destination_service` is the host, `destination_service_name` the
 * short name, as in Istio.
 */
export const LABELS = Object.freeze({
  reporter: 'reporter',
  sourceWorkload: 'source_workload',
  sourceWorkloadNamespace: 'source_workload_namespace',
  destinationService: 'destination_service',
  destinationServiceName: 'destination_service_name',
  destinationServiceNamespace: 'destination_service_namespace',
  destinationSubset: 'destination_subset',
  baselineSubset: 'baseline_subset',
  responseCode: 'response_code',
  responseFlags: 'response_flags',
  outcome: 'outcome',
  verdict: 'verdict',
  reason: 'reason',
  policy: 'policy',
  metric: 'metric',
  table: 'table',
  topic: 'topic',
  receiver: 'receiver',
  format: 'format',
  code: 'code',
} as const);
type LabelName = (typeof LABELS)[keyof typeof LABELS];

/**
 * `true` only when the list holds exactly the members of the union: a value added to a model type without
 * adding it here (or the reverse) fails the typecheck instead of leaving the catalogue short.
 */
type Exactly<U extends string, A extends readonly string[]> = [U] extends [A[number]] ? ([A[number]] extends [U] ? true : false) : false;

export const REPORTERS = ['source', 'destination', 'unknown'] as const;
export const OUTCOMES = ['ok', 'error', 'denied'] as const;
export const FLOW_VERDICTS = ['allowed', 'denied'] as const;
/** `''` on allowed flows: the label is always present, so one PromQL selector covers both verdicts. */
export const DENY_REASONS = ['rbac', 'ext_authz', 'blackhole', 'network_policy', ''] as const;
export const CANARY_VERDICTS = ['pass', 'fail', 'inconclusive'] as const;
export type CanaryVerdict = (typeof CANARY_VERDICTS)[number];
export const INGEST_OUTCOMES = ['accepted', 'rejected'] as const;
export const RECEIVERS = ['accesslog', 'flows', 'otlp_http', 'otlp_grpc', 'zipkin'] as const;
/** The parsers' formats, plus `unknown` for a rejected body whose format could not be told. */
export const INGEST_FORMATS = ['istio_text', 'istio_json', 'envelope', 'otlp_logs', 'otlp_traces', 'zipkin', 'hubble', 'calico', 'unknown'] as const;
export const DEADLETTER_DROP_REASONS = ['size', 'age'] as const;
/**
 * Why the tracer gave up on spans it had taken for export (services/tracer): its queue was full, the endpoint
 * kept failing until the retry budget ran out, the endpoint refused them for good (a non-retriable status),
 * or meshlens stopped with them still queued.
 */
export const TRACER_DROP_REASONS = ['queue_full', 'retries_exhausted', 'rejected', 'shutdown'] as const;
export type TracerDropReason = (typeof TRACER_DROP_REASONS)[number];

const _reporters: Exactly<Reporter, typeof REPORTERS> = true;
const _outcomes: Exactly<Outcome, typeof OUTCOMES> = true;
const _flowVerdicts: Exactly<FlowVerdict, typeof FLOW_VERDICTS> = true;
const _denyReasons: Exactly<DenyReason, typeof DENY_REASONS> = true;
const _formats: Exactly<IngestFormat | 'unknown', typeof INGEST_FORMATS> = true;

/** Istio's `istio_request_duration_milliseconds` buckets, in seconds, so dashboards compare like with like. */
export const DURATION_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600, 1800, 3600,
] as const;

const L = LABELS;
/** The destination as Istio labels it, in this order in every mesh family. */
const DESTINATION = [L.destinationService, L.destinationServiceName, L.destinationServiceNamespace] as const;

function spec<const N extends LabelName>(s: MetricSpec<N>): MetricSpec<N> {
  return Object.freeze(s);
}

const requests = spec({
  name: 'meshlens_requests_total',
  type: 'counter',
  help: 'Requests seen in mesh access logs, by reporter, source, destination subset, code and outcome.',
  labelNames: [
    L.reporter,
    L.sourceWorkload,
    L.sourceWorkloadNamespace,
    ...DESTINATION,
    L.destinationSubset,
    L.responseCode,
    // Istio's label: the proxy's own failures (UH, UF, NR...) tell mesh failures from application 5xx in PromQL.
    // Envoy's short codes comma-joined, `-` for none, `other` for a token outside Envoy's vocabulary: bounded,
    // but the combinations are too many to list.
    L.responseFlags,
    L.outcome,
  ],
  labelValues: { [L.reporter]: REPORTERS, [L.outcome]: OUTCOMES },
});

const requestDuration = spec({
  name: 'meshlens_request_duration_seconds',
  type: 'histogram',
  help: 'Request duration as the reporting sidecar measured it.',
  labelNames: [L.reporter, ...DESTINATION, L.destinationSubset],
  labelValues: { [L.reporter]: REPORTERS },
  buckets: DURATION_BUCKETS_SECONDS,
});

const flows = spec({
  name: 'meshlens_flows_total',
  type: 'counter',
  help: 'L3/L4 connections from flow logs, by reporting side, verdict and deciding policy.',
  // `reporter`: Calico and Hubble report one connection from both nodes, so a count over both reporters counts
  // it twice; PromQL picks a side with it.
  labelNames: [L.reporter, L.sourceWorkload, L.sourceWorkloadNamespace, ...DESTINATION, L.verdict, L.reason, L.policy],
  labelValues: { [L.reporter]: REPORTERS, [L.verdict]: FLOW_VERDICTS, [L.reason]: DENY_REASONS },
});

export const METRICS = Object.freeze({
  requests,
  requestDuration,
  flows,
  seriesOverflow: spec({
    name: 'meshlens_series_overflow_total',
    type: 'counter',
    help: 'Observations folded into a metric\'s __overflow__ series because it reached MESHLENS_MAX_SERIES label sets.',
    labelNames: [L.metric],
    // The families kept as capped series state (services/aggregator/series.ts).
    labelValues: { [L.metric]: [requests.name, requestDuration.name, flows.name] },
  }),
  canaryVerdict: spec({
    name: 'meshlens_canary_verdict',
    type: 'gauge',
    help: 'Canary judgement of each subset against its baseline over MESHLENS_CANARY_WINDOW: 1 on the current verdict.',
    labelNames: [...DESTINATION, L.destinationSubset, L.baselineSubset, L.verdict],
    labelValues: { [L.verdict]: CANARY_VERDICTS },
  }),
  subsetConfiguredWeight: spec({
    name: 'meshlens_subset_configured_weight_ratio',
    type: 'gauge',
    help:
      'Configured weight of each subset, as a share (0-1) of its service\'s default route: the first route without match conditions of the VirtualService routing the host, weights normalized to their sum as Istio does. Match-conditioned routes are left out, so a subset only they reach has no series. Set from MESHLENS_MESH_CONFIG at start; compare with the observed share of meshlens_requests_total.',
    // One default route per host (HostRouting.weights in lib/meshconfig/routes.ts), so no route label: one series per subset.
    labelNames: [...DESTINATION, L.destinationSubset],
    labelValues: {},
  }),
  canaryJudgeFailures: spec({
    name: 'meshlens_canary_judge_failures_total',
    type: 'counter',
    help: 'Canary judgements that failed to read the store; the previous verdicts stay published.',
    labelNames: [],
    labelValues: {},
  }),
  storeRows: spec({
    name: 'meshlens_store_rows_total',
    type: 'counter',
    help: 'Rows stored in ClickHouse per table (a redelivered batch counts again here; ClickHouse drops the repeat).',
    labelNames: [L.table],
    labelValues: {},
  }),
  storeRefusedRows: spec({
    name: 'meshlens_store_refused_rows_total',
    type: 'counter',
    help: 'Rows ClickHouse refused for good (isolated from their batch and dead-lettered with reason store_rejected).',
    labelNames: [L.table],
    labelValues: {},
  }),
  storeInsertFailures: spec({
    name: 'meshlens_store_insert_failures_total',
    type: 'counter',
    help: 'Failed ClickHouse inserts that will be retried; the bus redelivers the batch.',
    labelNames: [L.table],
    labelValues: {},
  }),
  storeInsertDuration: spec({
    name: 'meshlens_store_insert_duration_seconds',
    type: 'histogram',
    help: 'Time per ClickHouse insert of one consumed batch.',
    labelNames: [L.table],
    labelValues: {},
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  }),
  pipelinePendingRecords: spec({
    name: 'meshlens_pipeline_pending_records',
    type: 'gauge',
    help: 'Records acknowledged or taken in but not yet stored, per bus topic (memory bus: its depth; Kafka: this consumer\'s lag, estimated in records).',
    labelNames: [L.topic],
    labelValues: {},
  }),
  pipelineOldestPendingSeconds: spec({
    name: 'meshlens_pipeline_oldest_pending_seconds',
    type: 'gauge',
    help: 'Age of the oldest record not yet stored, per bus topic; 0 when none waits.',
    labelNames: [L.topic],
    labelValues: {},
  }),
  pipelineUnstoredRecords: spec({
    name: 'meshlens_pipeline_unstored_records_total',
    type: 'counter',
    help: 'Records taken in but not stored when meshlens stopped; their senders were answered 503 and retry.',
    labelNames: [],
    labelValues: {},
  }),
  // The ingest and dead-letter metrics are still registered with their own copies of these names in
  // services/ingest (metrics.ts, deadletters.ts); the catalogue test holds those copies to this list.
  ingestRecords: spec({
    name: 'meshlens_ingest_records_total',
    type: 'counter',
    help: 'Records received, by receiver, format and outcome (accepted or rejected).',
    labelNames: [L.receiver, L.format, L.outcome],
    labelValues: { [L.receiver]: RECEIVERS, [L.format]: INGEST_FORMATS, [L.outcome]: INGEST_OUTCOMES },
  }),
  ingestRejectedRecords: spec({
    name: 'meshlens_ingest_rejected_records_total',
    type: 'counter',
    help: 'Rejected records by reason; each is kept on the dead-letter topic with its raw bytes.',
    labelNames: [L.receiver, L.format, L.reason],
    labelValues: { [L.receiver]: RECEIVERS, [L.format]: INGEST_FORMATS, [L.reason]: REJECT_REASONS },
  }),
  ingestRetryResponses: spec({
    name: 'meshlens_ingest_retry_responses_total',
    type: 'counter',
    help: 'Requests answered 429/503 with Retry-After (gRPC UNAVAILABLE): the pipeline was full, unavailable or stopping; nothing was taken.',
    labelNames: [L.receiver],
    labelValues: { [L.receiver]: RECEIVERS },
  }),
  ingestRequests: spec({
    name: 'meshlens_ingest_requests_total',
    type: 'counter',
    help: 'Requests per receiver by their answer: the HTTP status code, or the gRPC status name.',
    // `code`: HTTP status, gRPC status name, or `aborted`; open in principle, small in practice.
    labelNames: [L.receiver, L.code],
    labelValues: { [L.receiver]: RECEIVERS },
  }),
  deadlettersWritten: spec({
    name: 'meshlens_deadletters_written_total',
    type: 'counter',
    help: 'Dead letters appended to the data dir (all-in-one).',
    labelNames: [],
    labelValues: {},
  }),
  deadlettersDropped: spec({
    name: 'meshlens_deadletters_dropped_total',
    type: 'counter',
    help:
      'Dead letters not kept in the data dir: reason="size" not written at MESHLENS_DEADLETTER_MAX_BYTES or deleted with an older day file to make room, reason="age" deleted with a day file past MESHLENS_DEADLETTER_RETENTION_DAYS.',
    labelNames: [L.reason],
    labelValues: { [L.reason]: DEADLETTER_DROP_REASONS },
  }),
  deadlettersTruncated: spec({
    name: 'meshlens_deadletters_truncated_total',
    type: 'counter',
    help: 'Dead letters whose raw input was cut to its first 64 KiB.',
    labelNames: [],
    labelValues: {},
  }),
  // The tracer (services/tracer): export to Jaeger is best effort after storage, so what it gives up is counted.
  tracerExportedSpans: spec({
    name: 'meshlens_tracer_exported_spans_total',
    type: 'counter',
    help: 'Spans the tracer exported to MESHLENS_JAEGER_ENDPOINT and the endpoint accepted.',
    labelNames: [],
    labelValues: {},
  }),
  tracerSampledOutSpans: spec({
    name: 'meshlens_tracer_sampled_out_spans_total',
    type: 'counter',
    help: 'Spans not exported because tail sampling left their trace out (no canary subset, error or denial, and outside MESHLENS_TRACE_SAMPLE_RATIO).',
    labelNames: [],
    labelValues: {},
  }),
  tracerDroppedSpans: spec({
    name: 'meshlens_tracer_dropped_spans_total',
    type: 'counter',
    help:
      'Spans chosen for export but dropped: reason="queue_full" the bounded export queue was full, "retries_exhausted" the endpoint kept failing, "rejected" the endpoint refused them for good, "shutdown" still queued when meshlens stopped.',
    labelNames: [L.reason],
    labelValues: { [L.reason]: TRACER_DROP_REASONS },
  }),
  tracerQueueSpans: spec({
    name: 'meshlens_tracer_queue_spans',
    type: 'gauge',
    help: 'Spans waiting in the tracer: held for their trace\'s sampling decision, or queued for export.',
    labelNames: [],
    labelValues: {},
  }),
  deadlettersDiskBytes: spec({
    name: 'meshlens_deadletters_disk_bytes',
    type: 'gauge',
    help: 'Bytes the dead-letter day files hold (all-in-one).',
    labelNames: [],
    labelValues: {},
  }),
});

/** Every meshlens metric, in a stable order. */
export const CATALOGUE: readonly MetricSpec[] = Object.freeze(Object.values(METRICS));

/**
 * Prefixes of prom-client's default process metrics (`process_cpu_seconds_total`, `nodejs_heap_size_used_bytes`...),
 * collected under the names every Node.js dashboard and the Go and Java clients' `process_*` use. They are
 * prom-client's, not meshlens's, so they are not listed one by one: their set changes with prom-client's version.
 */
export const PROCESS_METRIC_PREFIXES: readonly string[] = Object.freeze(['process_', 'nodejs_']);

/** A counter's name without `_total`: the `metric` part of a recording rule (`level:metric:operations`). */
export function ruleMetricName(m: MetricSpec): string {
  return m.type === 'counter' ? m.name.replace(/_total$/, '') : m.name;
}
