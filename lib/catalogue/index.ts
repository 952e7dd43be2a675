/** The metric catalogue: one source of metric names, help, labels and label values (DESIGN.md layout, issue 11). */

// Every metric meshlens exposes, the label vocabularies its values come from, and the rules' names for them.
export {
  CANARY_VERDICTS,
  CATALOGUE,
  DEADLETTER_DROP_REASONS,
  DENY_REASONS,
  DURATION_BUCKETS_SECONDS,
  FLOW_VERDICTS,
  INGEST_FORMATS,
  INGEST_OUTCOMES,
  LABELS,
  METRICS,
  OUTCOMES,
  PROCESS_METRIC_PREFIXES,
  RECEIVERS,
  REPORTERS,
  ruleMetricName,
  TRACER_DROP_REASONS,
} from './metrics';
export type { CanaryVerdict, MetricSpec, MetricType, TracerDropReason } from './metrics';
