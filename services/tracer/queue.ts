/**
 * The tracer's export queue: bounded in spans, sent in batches, retried with exponential backoff and jitter.
 *
 * Export is best effort after storage: the spans here were already stored (or are being stored) by the aggregator
 * under its own consumer group, and their senders' acknowledgements never wait on this queue. So when the endpoint
 * is slow or down nothing upstream waits: the queue fills to its bound, and what does not fit is dropped and
 * counted (`queue_full`) instead of growing memory or holding the bus.
 *
 * Retries follow the OTLP exporter rules (https://opentelemetry.io/docs/specs/otlp/#failures-1): 429, 502, 503
 * and 504 and network failures are retried, with the server's Retry-After when it gives one, otherwise exponential
 * backoff with jitter (so exporters restarted together do not retry in step); any other status is a refusal for
 * good (`rejected`). A batch still failing after `maxElapsedMs` is dropped (`retries_exhausted`).
 */
import type { Span } from '../../lib/model';
import type { TracerDropReason } from '../../lib/catalogue';

export type SendResult =
  | { ok: true; /** Spans the endpoint said it rejected (OTLP partial success). */ rejected?: number }
  | { ok: false; retriable: boolean; retryAfterMs?: number; message: string };

/** One export request; `signal` aborts it when meshlens stops. Never throws: failures are a SendResult. */
export type Sender = (spans: Span[], signal: AbortSignal) => Promise<SendResult>;

export interface QueueOptions {
  send: Sender;
  /** Most spans queued; beyond it new spans are dropped (`queue_full`). */
  capacity: number;
  /** Most spans per export request. */
  batchSpans: number;
  /** How long a partial batch waits for more before it is sent. */
  batchDelayMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Retry budget of one batch, from its first attempt. */
  maxElapsedMs: number;
  onExported(count: number): void;
  onDropped(reason: TracerDropReason, count: number): void;
  onFailure?(message: string, attempt: number, delayMs: number | undefined): void;
  random?: () => number;
}

export const QUEUE_DEFAULTS = Object.freeze({
  capacity: 20_000,
  // The OpenTelemetry SDK's BatchSpanProcessor default (maxExportBatchSize).
  batchSpans: 512,
  batchDelayMs: 1_000,
  initialBackoffMs: 1_000,
  maxBackoffMs: 30_000,
  maxElapsedMs: 120_000,
});

/** `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3) → ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

export class ExportQueue {
  private queue: Span[] = [];
  private wake: (() => void) | undefined;
  private closing = false;
  private readonly stop = new AbortController();
  private readonly loop: Promise<void>;
  private readonly random: () => number;

  constructor(private readonly opts: QueueOptions) {
    this.random = opts.random ?? Math.random;
    this.loop = this.run();
  }

  private inFlight = 0;

  /** Spans waiting, the batch being sent included: the bound applies to both. */
  get size(): number {
    return this.queue.length + this.inFlight;
  }

  enqueue(spans: readonly Span[]): void {
    if (this.closing) {
      this.opts.onDropped('shutdown', spans.length);
      return;
    }
    const room = Math.max(0, this.opts.capacity - this.size);
    const taken = spans.length <= room ? spans : spans.slice(0, room);
    if (taken.length < spans.length) this.opts.onDropped('queue_full', spans.length - taken.length);
    const wasEmpty = this.queue.length === 0;
    for (const s of taken) this.queue.push(s);
    // Wake the idle loop on the first span (it then waits batchDelayMs for more), and a waiting one on a full batch.
    if ((wasEmpty && taken.length > 0) || this.queue.length >= this.opts.batchSpans) this.wake?.();
  }

  /**
   * Sends what is queued, retrying as usual, for at most `timeoutMs`; then aborts what is in flight and counts what
   * is left as `shutdown`.
   */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    this.wake?.();
    const timer = setTimeout(() => this.stop.abort(), timeoutMs);
    try {
      await this.loop;
    } finally {
      clearTimeout(timer);
    }
  }

  private async run(): Promise<void> {
    while (true) {
      if (this.queue.length === 0) {
        if (this.closing) return;
        await this.sleep(Infinity);
        continue;
      }
      if (this.queue.length < this.opts.batchSpans && !this.closing) {
        await this.sleep(this.opts.batchDelayMs);
      }
      if (this.stop.signal.aborted) {
        this.opts.onDropped('shutdown', this.queue.length);
        this.queue = [];
        return;
      }
      const batch = this.queue.splice(0, this.opts.batchSpans);
      this.inFlight = batch.length;
      try {
        await this.export(batch);
      } finally {
        this.inFlight = 0;
      }
    }
  }

  private async export(batch: Span[]): Promise<void> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      const result = await this.opts.send(batch, this.stop.signal);
      if (result.ok) {
        const rejected = Math.min(batch.length, result.rejected ?? 0);
        if (rejected > 0) this.opts.onDropped('rejected', rejected);
        this.opts.onExported(batch.length - rejected);
        return;
      }
      if (this.stop.signal.aborted) {
        this.opts.onDropped('shutdown', batch.length);
        return;
      }
      if (!result.retriable) {
        this.opts.onFailure?.(result.message, attempt, undefined);
        this.opts.onDropped('rejected', batch.length);
        return;
      }
      // Exponential backoff with "equal jitter": half the step fixed, half random, so retries spread out but
      // still back off. The server's Retry-After, when given, replaces it (capped like the backoff).
      const step = Math.min(this.opts.maxBackoffMs, this.opts.initialBackoffMs * 2 ** attempt);
      const delay = result.retryAfterMs !== undefined ? Math.min(result.retryAfterMs, this.opts.maxBackoffMs) : step / 2 + (this.random() * step) / 2;
      if (Date.now() + delay - started > this.opts.maxElapsedMs) {
        this.opts.onFailure?.(result.message, attempt, undefined);
        this.opts.onDropped('retries_exhausted', batch.length);
        return;
      }
      this.opts.onFailure?.(result.message, attempt, delay);
      // Not woken by new spans or by close: a stop keeps retrying until its deadline aborts the wait.
      await this.sleep(delay, false);
      if (this.stop.signal.aborted) {
        this.opts.onDropped('shutdown', batch.length);
        return;
      }
    }
  }

  /** Waits `ms`, or until aborted; `wakeable` also ends on a full batch or close. */
  private sleep(ms: number, wakeable = true): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        this.stop.signal.removeEventListener('abort', done);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      if (Number.isFinite(ms)) timer = setTimeout(done, ms);
      this.stop.signal.addEventListener('abort', done);
      if (wakeable) this.wake = done;
    });
  }
}
