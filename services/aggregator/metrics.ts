/**
 * The mesh metrics of CONTRACT.md §5, kept as aggregated state (series.ts) and updated once per consumed
 * batch, plus the aggregator's own health metrics.
 */
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import * as model from '../../lib/model';
import type { Flow, MeshRequest } from '../../lib/model';
import { CounterFamily, HistogramFamily } from './series';
import type { KeyPart, Labels } from './series';

// Bound once at load: CommonJS re-exports compile to property getters, and these run once per record.
const { flagsLabel, orUnknown } = model;

/** Istio's `istio_request_duration_milliseconds` buckets, in seconds, so dashboards compare like with like. */
export const DURATION_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600, 1800, 3600,
] as const;

const REQUEST_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_subset',
  'response_code',
  'response_flags',
  'outcome',
] as const;
const DURATION_LABELS = [
  'reporter',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_subset',
] as const;
/**
 * `reporter` (where the flow log was taken: `source`, `destination`, `unknown`): Calico and Hubble report one
 * connection from both nodes, so a count over both reporters counts it twice; PromQL picks a side with it.
 */
const FLOW_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'verdict',
  'reason',
  'policy',
] as const;
/**
 * The series keys of the record at hand, one label value per slot in each family's label order. Filled and read
 * within one synchronous call, so one array per family serves every record: no key string and no array per record.
 */
const requestKey: KeyPart[] = new Array<KeyPart>(REQUEST_LABELS.length).fill('');
const durationKey: KeyPart[] = new Array<KeyPart>(DURATION_LABELS.length).fill('');
const flowKey: KeyPart[] = new Array<KeyPart>(FLOW_LABELS.length).fill('');

export class MeshMetrics {
  private readonly requests: CounterFamily;
  private readonly durations: HistogramFamily;
  private readonly flows: CounterFamily;

  constructor(registry: Registry, maxSeries: number) {
    const overflowCounter = new Counter({
      name: 'meshlens_series_overflow_total',
      help: 'Observations folded into a metric\'s __overflow__ series because it reached MESHLENS_MAX_SERIES label sets.',
      labelNames: ['metric'],
      registers: [registry],
    });
    const family = (name: string, help: string, labelNames: readonly string[]) => ({
      name,
      help,
      labelNames,
      maxSeries,
      overflowCounter,
    });
    this.requests = new CounterFamily(
      family('meshlens_requests_total', 'Requests seen in mesh access logs, by reporter, source, destination subset, code and outcome.', REQUEST_LABELS),
    );
    this.durations = new HistogramFamily(
      family('meshlens_request_duration_seconds', 'Request duration as the reporting sidecar measured it.', DURATION_LABELS),
      DURATION_BUCKETS_SECONDS,
    );
    this.flows = new CounterFamily(
      family('meshlens_flows_total', 'L3/L4 connections from flow logs, by reporting side, verdict and deciding policy.', FLOW_LABELS),
    );
    for (const m of [this.requests, this.durations, this.flows]) registry.registerMetric(m as never);
  }

  /**
   * Adds a consumed batch of requests: per record and family, one walk down the family's series tree by the raw
   * label values (series.ts); the labels themselves are made only for a new series.
   */
  addRequests(records: readonly MeshRequest[]): void {
    const rk = requestKey;
    const dk = durationKey;
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as MeshRequest;
      rk[0] = dk[0] = r.reporter;
      rk[1] = r.sourceWorkload;
      rk[2] = r.sourceNamespace;
      rk[3] = dk[1] = r.destinationHost;
      rk[4] = dk[2] = r.destinationService;
      rk[5] = dk[3] = r.destinationNamespace;
      rk[6] = dk[4] = r.destinationSubset;
      rk[7] = r.responseCode;
      // The bounded label value, not the raw flags: 2,000 made-up flags are one `other` series, not 2,000 keys.
      rk[8] = flagsLabel(r.responseFlags);
      rk[9] = r.outcome;
      this.requests.add(rk, requestLabels, r, 1);
      this.durations.observe(dk, durationLabels, r, r.durationMs / 1000);
    }
  }

  addFlows(flows: readonly Flow[]): void {
    const k = flowKey;
    for (let i = 0; i < flows.length; i++) {
      const f = flows[i] as Flow;
      k[0] = f.reporter;
      k[1] = f.sourceWorkload;
      k[2] = f.sourceNamespace;
      k[3] = f.destinationHost;
      k[4] = f.destinationService;
      k[5] = f.destinationNamespace;
      k[6] = f.verdict;
      k[7] = f.denyReason;
      k[8] = f.policy;
      this.flows.add(k, flowLabels, f, f.count);
    }
  }

  /** Label sets held per family (for the benchmark's memory-per-series figure and tests). */
  seriesCounts(): Record<string, number> {
    return { requests: this.requests.size, durations: this.durations.size, flows: this.flows.size };
  }
}

// Labels of a new series, in each family's label order (the exposition's order).
function requestLabels(r: MeshRequest): Labels {
  return {
    reporter: r.reporter,
    source_workload: orUnknown(r.sourceWorkload),
    source_workload_namespace: orUnknown(r.sourceNamespace),
    destination_service: orUnknown(r.destinationHost),
    destination_service_name: orUnknown(r.destinationService),
    destination_service_namespace: orUnknown(r.destinationNamespace),
    destination_subset: r.destinationSubset,
    response_code: String(r.responseCode),
    // Istio's label: the proxy's own failures (UH, UF, NR...) tell mesh failures from application 5xx in PromQL.
    response_flags: flagsLabel(r.responseFlags),
    outcome: r.outcome,
  };
}

function durationLabels(r: MeshRequest): Labels {
  return {
    reporter: r.reporter,
    destination_service: orUnknown(r.destinationHost),
    destination_service_name: orUnknown(r.destinationService),
    destination_service_namespace: orUnknown(r.destinationNamespace),
    destination_subset: r.destinationSubset,
  };
}

function flowLabels(f: Flow): Labels {
  return {
    reporter: f.reporter,
    source_workload: orUnknown(f.sourceWorkload),
    source_workload_namespace: orUnknown(f.sourceNamespace),
    destination_service: orUnknown(f.destinationHost),
    destination_service_name: orUnknown(f.destinationService),
    destination_service_namespace: orUnknown(f.destinationNamespace),
    verdict: f.verdict,
    reason: f.denyReason,
    policy: f.policy,
  };
}

/** The storage consumer's own metrics. */
export class StoreMetrics {
  readonly rows: Counter<'table'>;
  readonly refused: Counter<'table'>;
  readonly failures: Counter<'table'>;
  readonly insertSeconds: Histogram<'table'>;

  constructor(registry: Registry) {
    this.rows = new Counter({
      name: 'meshlens_store_rows_total',
      help: 'Rows stored in ClickHouse per table (a redelivered batch counts again here; ClickHouse drops the repeat).',
      labelNames: ['table'],
      registers: [registry],
    });
    this.refused = new Counter({
      name: 'meshlens_store_refused_rows_total',
      help: 'Rows ClickHouse refused for good (isolated from their batch and dead-lettered with reason store_rejected).',
      labelNames: ['table'],
      registers: [registry],
    });
    this.failures = new Counter({
      name: 'meshlens_store_insert_failures_total',
      help: 'Failed ClickHouse inserts that will be retried; the bus redelivers the batch.',
      labelNames: ['table'],
      registers: [registry],
    });
    this.insertSeconds = new Histogram({
      name: 'meshlens_store_insert_duration_seconds',
      help: 'Time per ClickHouse insert of one consumed batch.',
      labelNames: ['table'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  }
}
