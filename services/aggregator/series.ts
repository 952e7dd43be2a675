/**
 * Metric families kept as aggregated state and read by prom-client at scrape time (DESIGN.md: update from
 * aggregated state, never one prom-client call per event). Each family is a prom-client-compatible metric
 * object (`name`, `help`, `type`, `get()`), registered in the process registry beside the ordinary ones.
 *
 * Cardinality (CONTRACT.md §9): at most `maxSeries` label sets per family. Past it, a new label set folds
 * into the family's overflow series — its high-cardinality labels set to `__overflow__` — and
 * `meshlens_series_overflow_total{metric}` counts the folded observations, so totals stay right.
 */
import type { Counter } from 'prom-client';

export type Labels = Record<string, string>;

export const OVERFLOW = '__overflow__';

interface Sample {
  metricName?: string;
  labels: Labels;
  value: number;
}

/** What prom-client's registry reads from a metric at scrape time (the shape its own metrics' `get()` return). */
export interface Snapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: Sample[];
}

interface FamilyOptions {
  name: string;
  help: string;
  labelNames: readonly string[];
  maxSeries: number;
  /** Labels whose values the overflow series replaces by `__overflow__`. */
  overflowLabels: readonly string[];
  overflowCounter: Counter<'metric'>;
}

abstract class Family<S> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum' as const;
  protected readonly series = new Map<string, { labels: Labels; state: S }>();

  constructor(protected readonly opts: FamilyOptions) {
    this.name = opts.name;
    this.help = opts.help;
  }

  get size(): number {
    return this.series.size;
  }

  protected abstract newState(): S;

  /**
   * The state of the series `key` (a caller-built identity of the label values); `labels()` is only called
   * when the series is new. Returns the overflow series once the family is full.
   */
  protected slot(key: string, labels: () => Labels, weight: number): S {
    const hit = this.series.get(key);
    if (hit) return hit.state;
    if (this.series.size >= this.opts.maxSeries) {
      this.opts.overflowCounter.inc({ metric: this.name }, weight);
      return this.overflowSlot(labels());
    }
    const entry = { labels: labels(), state: this.newState() };
    this.series.set(key, entry);
    return entry.state;
  }

  private overflowSlot(labels: Labels): S {
    const folded: Labels = { ...labels };
    for (const l of this.opts.overflowLabels) if (l in folded) folded[l] = OVERFLOW;
    const key = `${OVERFLOW}\u0001${this.opts.labelNames.map((l) => folded[l]).join('\u0001')}`;
    let entry = this.series.get(key);
    if (!entry) {
      // The overflow series themselves may exceed maxSeries by the few low-cardinality combinations they keep.
      entry = { labels: folded, state: this.newState() };
      this.series.set(key, entry);
    }
    return entry.state;
  }

  reset(): void {
    this.series.clear();
  }
}

export class CounterFamily extends Family<{ value: number }> {
  readonly type = 'counter' as const;

  protected newState(): { value: number } {
    return { value: 0 };
  }

  add(key: string, labels: () => Labels, n: number): void {
    this.slot(key, labels, n).value += n;
  }

  async get(): Promise<Snapshot> {
    const values: Sample[] = [];
    for (const { labels, state } of this.series.values()) values.push({ labels, value: state.value });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

interface HistogramState {
  /** Non-cumulative counts per bucket; the last slot is +Inf. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

export class HistogramFamily extends Family<HistogramState> {
  readonly type = 'histogram' as const;
  private readonly leLabels: string[];

  constructor(
    opts: FamilyOptions,
    private readonly bounds: readonly number[],
  ) {
    super(opts);
    this.leLabels = [...bounds.map((b) => String(b)), '+Inf'];
  }

  protected newState(): HistogramState {
    return { buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
  }

  observe(key: string, labels: () => Labels, value: number): void {
    const s = this.slot(key, labels, 1);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    s.buckets[i] = (s.buckets[i] as number) + 1;
    s.sum += value;
    s.count++;
  }

  async get(): Promise<Snapshot> {
    const values: Sample[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const { labels, state } of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.leLabels.length; i++) {
        cumulative += state.buckets[i] as number;
        values.push({ metricName: bucketName, labels: { ...labels, le: this.leLabels[i] as string }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels, value: state.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: state.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
