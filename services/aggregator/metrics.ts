/**
 * The mesh metrics of CONTRACT.md §5, kept as aggregated state (series.ts) and updated once per consumed
 * batch, plus the aggregator's own health metrics. Names, help, label names and buckets come from the metric
 * catalogue (lib/catalogue); only how a record fills the labels is written here.
 */
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import * as model from '../../lib/model';
import type { Flow, MeshRequest } from '../../lib/model';
import { LABELS, METRICS } from '../../lib/catalogue';
import type { MetricSpec } from '../../lib/catalogue';
import { CounterFamily, HistogramFamily } from './series';
import type { KeyPart, Labels } from './series';

// Bound once at load: CommonJS re-exports compile to property getters, and these run once per record.
const { flagsLabel, orUnknown } = model;

const { requests: REQUESTS, requestDuration: DURATIONS, flows: FLOWS, seriesOverflow: OVERFLOW } = METRICS;
const L = LABELS;
/**
 * The series keys of the record at hand, one label value per slot in each family's label order. Filled and read
 * within one synchronous call, so one array per family serves every record: no key string and no array per record.
 */
const requestKey: KeyPart[] = new Array<KeyPart>(REQUESTS.labelNames.length).fill('');
const durationKey: KeyPart[] = new Array<KeyPart>(DURATIONS.labelNames.length).fill('');
const flowKey: KeyPart[] = new Array<KeyPart>(FLOWS.labelNames.length).fill('');

export class MeshMetrics {
  private readonly requests: CounterFamily;
  private readonly durations: HistogramFamily;
  private readonly flows: CounterFamily;

  constructor(registry: Registry, maxSeries: number) {
    const overflowCounter = new Counter({
      name: OVERFLOW.name,
      help: OVERFLOW.help,
      labelNames: OVERFLOW.labelNames,
      registers: [registry],
    }) as Counter<'metric'>;
    const family = (m: MetricSpec) => ({ name: m.name, help: m.help, labelNames: m.labelNames, maxSeries, overflowCounter });
    this.requests = new CounterFamily(family(REQUESTS));
    this.durations = new HistogramFamily(family(DURATIONS), DURATIONS.buckets as readonly number[]);
    this.flows = new CounterFamily(family(FLOWS));
    for (const m of [this.requests, this.durations, this.flows]) registry.registerMetric(m as never);
  }

  /**
   * Adds a consumed batch of requests: per record and family, one walk down the family's series tree by the raw
   * label values (series.ts); the labels themselves are made only for a new series. The key slots are the series'
   * identity, one per catalogue label (the tree has that many levels); which label a slot feeds is requestLabels'
   * business, so the slots are filled by position here, with no per-record lookup of names.
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

// Labels of a new series, in each family's catalogue order (the exposition's order). The names come from the
// catalogue, so a label renamed there is renamed here; a label added there and not filled here is caught by
// test/metrics-catalogue.e2e.test.ts.
function requestLabels(r: MeshRequest): Labels {
  return {
    [L.reporter]: r.reporter,
    [L.sourceWorkload]: orUnknown(r.sourceWorkload),
    [L.sourceWorkloadNamespace]: orUnknown(r.sourceNamespace),
    [L.destinationService]: orUnknown(r.destinationHost),
    [L.destinationServiceName]: orUnknown(r.destinationService),
    [L.destinationServiceNamespace]: orUnknown(r.destinationNamespace),
    [L.destinationSubset]: r.destinationSubset,
    [L.responseCode]: String(r.responseCode),
    [L.responseFlags]: flagsLabel(r.responseFlags),
    [L.outcome]: r.outcome,
  };
}

function durationLabels(r: MeshRequest): Labels {
  return {
    [L.reporter]: r.reporter,
    [L.destinationService]: orUnknown(r.destinationHost),
    [L.destinationServiceName]: orUnknown(r.destinationService),
    [L.destinationServiceNamespace]: orUnknown(r.destinationNamespace),
    [L.destinationSubset]: r.destinationSubset,
  };
}

function flowLabels(f: Flow): Labels {
  return {
    [L.reporter]: f.reporter,
    [L.sourceWorkload]: orUnknown(f.sourceWorkload),
    [L.sourceWorkloadNamespace]: orUnknown(f.sourceNamespace),
    [L.destinationService]: orUnknown(f.destinationHost),
    [L.destinationServiceName]: orUnknown(f.destinationService),
    [L.destinationServiceNamespace]: orUnknown(f.destinationNamespace),
    [L.verdict]: f.verdict,
    [L.reason]: f.denyReason,
    [L.policy]: f.policy,
  };
}

/** The storage consumer's own metrics. */
export class StoreMetrics {
  readonly rows: Counter<'table'>;
  readonly refused: Counter<'table'>;
  readonly failures: Counter<'table'>;
  readonly insertSeconds: Histogram<'table'>;

  constructor(registry: Registry) {
    const { storeRows, storeRefusedRows, storeInsertFailures, storeInsertDuration } = METRICS;
    const counter = (m: MetricSpec<'table'>) =>
      new Counter({ name: m.name, help: m.help, labelNames: m.labelNames, registers: [registry] });
    this.rows = counter(storeRows);
    this.refused = counter(storeRefusedRows);
    this.failures = counter(storeInsertFailures);
    this.insertSeconds = new Histogram({
      name: storeInsertDuration.name,
      help: storeInsertDuration.help,
      labelNames: storeInsertDuration.labelNames,
      buckets: storeInsertDuration.buckets as readonly number[] as number[],
      registers: [registry],
    });
  }
}
