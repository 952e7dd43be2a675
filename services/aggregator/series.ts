/**
 * Metric families kept as aggregated state and read at scrape time (DESIGN.md: update from aggregated state,
 * never one prom-client call per event). Each family is a prom-client-compatible metric object (`name`,
 * `help`, `type`, `get()`), registered in the process registry beside the ordinary ones.
 *
 * Scraping without a stall: prom-client formats every sample of `get()` anew on each scrape (label escaping,
 * object spreads, a join per line), which held the event loop ~450 ms at 10k series. A family renders each
 * series' label text once, when the series is created, and `exposition()` only concatenates those with the
 * current values, a slice of lines at a time with the event loop let go in between: the scrape of 10k series
 * still writes ~15 MB, but ingest and queries keep being served while it does. `ExpositionRegistry`
 * (lib/runtime) asks a metric for that text when it has it.
 *
 * Cardinality (CONTRACT.md §9): at most `maxSeries` label sets per family, plus one. Past it, a new label set
 * folds into the family's single overflow series — every label `__overflow__`, whatever the input, so no value
 * from a request can grow the family any further — and `meshlens_series_overflow_total{metric}` counts the
 * folded observations, so totals stay right.
 *
 * Finding a series per observation (issue 10, part 3): a key made by joining ten label values was a string
 * built, flattened and hashed per record, plus a closure for labels that were almost never needed (~1 µs per
 * request record). A series is now found by its label values one at a time, down a tree with one level per
 * label: a level with one value holds it inline (most levels below the destination), only a level with several
 * values has a Map. The values are the record's own strings, mostly shared ones (destinations come from a
 * cache), whose hashes V8 computes once. The labels are built, by a plain function of the record, only when a
 * series is created.
 */
import type { Counter } from 'prom-client';

export type Labels = Record<string, string>;

/**
 * One label's identity in a series key: the raw value the labels are made from (`''` and `unknown` may render
 * as the same label, and are two keys, as they always were). Numbers are for numeric fields such as the
 * response code, so that none is turned into a string per record.
 */
export type KeyPart = string | number;

/** Builds a new series' labels from what the caller observed; called once per series, never per observation. */
export type LabelsOf<T> = (source: T) => Labels;

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

interface Series<S> {
  /**
   * The label pairs as exposition text, `a="x",b="y"`, rendered once: the only copy of the labels kept (an
   * object beside it would cost another ~150 bytes per series); `get()` reads them back from it.
   */
  text: string;
  state: S;
}

/** A label value as the text format wants it: backslash, double quote and newline escaped. */
function escapeLabelValue(value: string): string {
  return /[\\"\n]/.test(value) ? value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : value;
}

/**
 * `a="x",b="y"`. Built by one join, so V8 holds it as one flat string: a `+=` chain would keep a tree of
 * concatenations per series (~1 KiB of heap each) and flatten it again on every scrape.
 */
function renderLabels(labels: Labels): string {
  const pairs: string[] = [];
  for (const name in labels) pairs.push(`${name}="${escapeLabelValue(labels[name] as string)}"`);
  return pairs.join(',');
}

/** `a="x",b="y"` (as renderLabels wrote it) back into `{a: 'x', b: 'y'}`. */
function parseLabels(text: string): Labels {
  const labels: Labels = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('="', i);
    const name = text.slice(i, eq);
    let value = '';
    let j = eq + 2;
    for (; text.charCodeAt(j) !== 34 /* " */; j++) {
      if (text.charCodeAt(j) === 92 /* \ */) {
        j++;
        value += text[j] === 'n' ? '\n' : text[j];
      } else value += text[j];
    }
    labels[name] = value;
    i = j + 2; // past `",`
  }
  return labels;
}

/** A sample value as prom-client writes it. */
function valueText(v: number): string {
  if (Number.isFinite(v)) return String(v);
  return Number.isNaN(v) ? 'Nan' : v < 0 ? '-Inf' : '+Inf';
}

/** Sample lines rendered between two yields of the event loop (~1.5 MB of text, a few ms). */
const LINES_PER_SLICE = 5_000;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A key part the tree keeps for as long as the series lives, as a string of its own. A record's strings are often
 * slices of the request body they were parsed from (TEXT fields such as the response flags), and V8 keeps a slice as
 * a view that holds the whole body, up to 16 MiB, alive; a joined key string used to be flattened into a copy by
 * the Map, the tree must copy for itself. Only when a series is created.
 */
function ownKey(part: KeyPart): KeyPart {
  if (typeof part !== 'string') return part;
  for (let i = 0; i < part.length; i++) {
    if (part.charCodeAt(i) > 0xff) return Buffer.from(part, 'utf16le').toString('utf16le');
  }
  return Buffer.from(part, 'latin1').toString('latin1');
}

/**
 * A level of the series tree: a single value inline (`key`, `child`), or, from the second value on, a Map. The
 * inline form costs a few words where a Map costs ~150 bytes, and most levels of a family hold one value per
 * parent (one namespace per host, one outcome per code...), so the tree stays small beside the series text.
 */
class Level {
  key: KeyPart = '';
  child: Level | Series<unknown> | undefined = undefined;
  more: Map<KeyPart, Level | Series<unknown>> | undefined = undefined;

  get(key: KeyPart): Level | Series<unknown> | undefined {
    if (this.more !== undefined) return this.more.get(key);
    // SameValueZero, as a Map compares: NaN finds NaN.
    return this.child !== undefined && (this.key === key || (key !== key && this.key !== this.key)) ? this.child : undefined;
  }

  set(key: KeyPart, child: Level | Series<unknown>): void {
    if (this.more !== undefined) {
      this.more.set(key, child);
    } else if (this.child === undefined) {
      this.key = key;
      this.child = child;
    } else {
      this.more = new Map<KeyPart, Level | Series<unknown>>([
        [this.key, this.child],
        [key, child],
      ]);
      this.child = undefined;
      this.key = '';
    }
  }
}

abstract class Family<S> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum' as const;
  /** Every series in creation order (the exposition's order), the overflow series included once it exists. */
  protected readonly series: Series<S>[] = [];
  /** The series tree: one level per label, in `labelNames` order. */
  private root = new Level();
  private readonly header: string;

  constructor(
    protected readonly opts: FamilyOptions,
    type: 'counter' | 'histogram',
  ) {
    // The tree has one level per label; every mesh family has labels, and a family without would need a root series.
    if (opts.labelNames.length === 0) throw new Error(`${opts.name}: a series family needs at least one label`);
    this.name = opts.name;
    this.help = opts.help;
    this.header = `# HELP ${opts.name} ${opts.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${opts.name} ${type}`;
  }

  get size(): number {
    return this.series.length;
  }

  protected abstract newState(): S;

  /** Appends the sample lines of one series to `out`, each with its leading newline; returns how many. */
  protected abstract render(out: string[], series: Series<S>): number;

  /**
   * The state of the series whose label values are `key[0..labelNames.length)` (read, never kept: callers may
   * reuse one array); `labelsOf(source)` is only called when the series is new. Returns the overflow series once
   * the family is full, and then creates nothing, not even a level of the tree: input past the cap cannot grow it.
   */
  protected slot<T>(key: readonly KeyPart[], labelsOf: LabelsOf<T>, source: T, weight: number): S {
    const last = this.opts.labelNames.length - 1;
    let level = this.root;
    for (let i = 0; i < last; i++) {
      const next = level.get(key[i] as KeyPart) as Level | undefined;
      if (next === undefined) return this.create(level, i, key, labelsOf, source, weight);
      level = next;
    }
    const hit = level.get(key[last] as KeyPart) as Series<S> | undefined;
    return hit !== undefined ? hit.state : this.create(level, last, key, labelsOf, source, weight);
  }

  /** A new series below `level`, which `key[0..depth)` leads to; or the overflow series once the family is full. */
  private create<T>(level: Level, depth: number, key: readonly KeyPart[], labelsOf: LabelsOf<T>, source: T, weight: number): S {
    if (this.series.length >= this.opts.maxSeries) {
      this.opts.overflowCounter.inc({ metric: this.name }, weight);
      return this.overflowSlot();
    }
    const last = this.opts.labelNames.length - 1;
    for (let i = depth; i < last; i++) {
      const next = new Level();
      level.set(ownKey(key[i] as KeyPart), next);
      level = next;
    }
    const entry: Series<S> = { text: renderLabels(labelsOf(source)), state: this.newState() };
    level.set(ownKey(key[last] as KeyPart), entry as Series<unknown>);
    this.series.push(entry);
    return entry.state;
  }

  private overflow: S | undefined;

  /** The one series every label set folds into once the family is full; it is the `maxSeries + 1`st. */
  private overflowSlot(): S {
    if (this.overflow === undefined) {
      const labels: Labels = {};
      for (const l of this.opts.labelNames) labels[l] = OVERFLOW;
      this.overflow = this.newState();
      // Not in the tree: no key leads to it, every label set past the cap does.
      this.series.push({ text: renderLabels(labels), state: this.overflow });
    }
    return this.overflow;
  }

  /**
   * The family in the Prometheus text format (no trailing newline, as prom-client's registry joins metrics).
   * Series created while it renders may or may not be in it, as with any scrape a moment earlier or later.
   */
  async exposition(): Promise<string> {
    return (await this.expositionChunks()).join('');
  }

  /** `exposition()` in pieces of a slice each, for a registry that joins every metric's text at once. */
  async expositionChunks(): Promise<string[]> {
    const chunks: string[] = [this.header];
    let out: string[] = [];
    let lines = 0;
    for (const s of this.series) {
      lines += this.render(out, s);
      if (lines >= LINES_PER_SLICE) {
        chunks.push(out.join(''));
        out = [];
        lines = 0;
        await nextTurn();
      }
    }
    chunks.push(out.join(''));
    return chunks;
  }

  reset(): void {
    // Truncated in place, so that an exposition in progress stops where a cleared Map would have stopped it.
    this.series.length = 0;
    this.root = new Level();
    this.overflow = undefined;
  }
}

export class CounterFamily extends Family<{ value: number }> {
  readonly type = 'counter' as const;

  constructor(opts: FamilyOptions) {
    super(opts, 'counter');
  }

  protected newState(): { value: number } {
    return { value: 0 };
  }

  add<T>(key: readonly KeyPart[], labelsOf: LabelsOf<T>, source: T, n: number): void {
    this.slot(key, labelsOf, source, n).value += n;
  }

  protected render(out: string[], s: Series<{ value: number }>): number {
    out.push('\n', this.name, s.text.length === 0 ? ' ' : '{' + s.text + '} ', valueText(s.state.value));
    return 1;
  }

  async get(): Promise<Snapshot> {
    const values: Sample[] = [];
    for (const { text, state } of this.series) values.push({ labels: parseLabels(text), value: state.value });
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
  /** `,le="0.005"} ` per bucket, and the line starts: the constant parts of every histogram line. */
  private readonly leText: string[];
  private readonly bucketStart: string;
  private readonly sumStart: string;
  private readonly countStart: string;

  constructor(
    opts: FamilyOptions,
    private readonly bounds: readonly number[],
  ) {
    super(opts, 'histogram');
    this.leLabels = [...bounds.map((b) => String(b)), '+Inf'];
    this.leText = this.leLabels.map((le) => `le="${le}"} `);
    this.bucketStart = `\n${opts.name}_bucket{`;
    this.sumStart = `\n${opts.name}_sum`;
    this.countStart = `\n${opts.name}_count`;
  }

  protected newState(): HistogramState {
    return { buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
  }

  observe<T>(key: readonly KeyPart[], labelsOf: LabelsOf<T>, source: T, value: number): void {
    const s = this.slot(key, labelsOf, source, 1);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    s.buckets[i] = (s.buckets[i] as number) + 1;
    s.sum += value;
    s.count++;
  }

  protected render(out: string[], s: Series<HistogramState>): number {
    const labels = s.text.length === 0 ? '' : s.text + ',';
    let cumulative = 0;
    for (let i = 0; i < this.leText.length; i++) {
      cumulative += s.state.buckets[i] as number;
      out.push(this.bucketStart, labels, this.leText[i] as string, valueText(cumulative));
    }
    const block = s.text.length === 0 ? ' ' : '{' + s.text + '} ';
    out.push(this.sumStart, block, valueText(s.state.sum), this.countStart, block, valueText(s.state.count));
    return this.leText.length + 2;
  }

  async get(): Promise<Snapshot> {
    const values: Sample[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const { text, state } of this.series) {
      const labels = parseLabels(text);
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
