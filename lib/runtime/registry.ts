/**
 * The process's metric registry: prom-client's, except that a metric able to write its own exposition text
 * (`exposition()`, the aggregator's mesh families) is asked for it instead of being formatted sample by sample.
 * prom-client re-escapes and re-joins every label set of every sample on each scrape; for 10k series that held
 * the event loop for hundreds of milliseconds (CONTRACT.md §8: at most 50 ms).
 */
import { Registry, type Metric } from 'prom-client';

interface RendersItself {
  exposition(): Promise<string>;
  /** The same text in pieces, so that the whole scrape is copied into one string once. */
  expositionChunks(): Promise<string[]>;
}

function rendersItself(metric: unknown): metric is RendersItself {
  return typeof (metric as Partial<RendersItself>).exposition === 'function';
}

/** prom-client's own formatting, which it keeps off its typed surface. */
const formatted = (Registry.prototype as unknown as { getMetricsAsString(this: Registry, metric: Metric): Promise<string> }).getMetricsAsString;

export class ExpositionRegistry extends Registry {
  /**
   * prom-client's `metrics()` in pieces, one metric after the other, the families' text a slice at a time:
   * `/metrics` streams them, so the ~15 MB of a 10k-series scrape is never copied into one string (prom-client
   * joins each metric's lines, then all metrics, and the garbage of those copies costs collector pauses too).
   */
  async metricsChunks(): Promise<string[]> {
    if (this.contentType !== Registry.PROMETHEUS_CONTENT_TYPE) return [await super.metrics()];
    const parts: string[] = [];
    for (const metric of this.getMetricsAsArray()) {
      if (parts.length > 0) parts.push('\n\n');
      if (rendersItself(metric)) for (const chunk of await metric.expositionChunks()) parts.push(chunk);
      else parts.push(await formatted.call(this, metric as unknown as Metric));
    }
    parts.push('\n');
    return parts;
  }

  override async metrics(): Promise<string> {
    return (await this.metricsChunks()).join('');
  }

  /** Called by `metrics()` for each registered metric (prom-client's internal seam). */
  async getMetricsAsString(metric: Metric): Promise<string> {
    // The families write the Prometheus text format only; OpenMetrics falls back to prom-client.
    if (rendersItself(metric) && this.contentType === Registry.PROMETHEUS_CONTENT_TYPE) return metric.exposition();
    return formatted.call(this, metric);
  }
}
