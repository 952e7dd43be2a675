/**
 * Metric families kept as aggregated state and read by prom-client at scrape time (DESIGN.md: update from
 * aggregated state, never one prom-client call per event). Each family is a prom-client-compatible metric
 * object (`name`, `help`, `type`, `get()`), registered in the process registry beside the ordinary ones.
 *
 * Cardinality (CONTRACT.md §9): at most `maxSeries` label sets per family, plus one. Past it, a new label set
 * folds into the family's single overflow series — every label `__overflow__`, whatever the input, so no value
 * from a request can grow the family any further — and `meshlens_series_overflow_total{metric}` counts the
 * folded observations, so totals stay right.
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
      return this.overflowSlot();
    }
    const entry = { labels: labels(), state: this.newState() };
    this.series.set(key, entry);
    return entry.state;
  }

  private overflow: S | undefined;

  /** The one series every label set folds into once the family is full; it is the `maxSeries + 1`st. */
  private overflowSlot(): S {
    if (this.overflow === undefined) {
      const labels: Labels = {};
      for (const l of this.opts.labelNames) labels[l] = OVERFLOW;
      this.overflow = this.newState();
      // A key no caller-built key can equal: those join label values with \u0001 and never start with \u0000.
      this.series.set('\u0000overflow', { labels, state: this.overflow });
    }
    return this.overflow;
  }

  reset(): void {
    this.series.clear();
    this.overflow = undefined;
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
