/**
 * The tracer target (issue 11, item 4): spans from the bus to Jaeger (OTLP/HTTP, or Jaeger Thrift over HTTP),
 * with canary-aware tail sampling.
 *
 * It consumes TOPICS.spans under its own consumer group, so storage (the aggregator's group) and export are
 * independent. Its handler only hands the spans to the sampler and returns: the bus commits at once, so a slow or
 * down Jaeger never holds the bus, storage or the receivers' acknowledgements. Spans are acknowledged when stored;
 * export is best effort after that — retried, bounded, and what is given up counted in
 * `meshlens_tracer_dropped_spans_total` by reason. Spans held or queued here when the process dies are not exported.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { TOPICS, type Bus, type Subscription } from '../../lib/bus';
import { METRICS } from '../../lib/catalogue';
import type { MeshConfig } from '../../lib/meshconfig';
import type { Logger } from '../../lib/runtime';
import { jaegerThriftSender } from './jaeger';
import { otlpHttpSender } from './otlp';
import { ExportQueue, QUEUE_DEFAULTS, type Sender } from './queue';
import { SAMPLER_DEFAULTS, TailSampler } from './sampler';

export const TRACER_GROUP = 'meshlens-tracer';

export interface TracerOptions {
  bus: Bus;
  registry: Registry;
  logger: Logger;
  meshConfig: MeshConfig;
  /** MESHLENS_JAEGER_ENDPOINT */
  endpoint: string;
  /** MESHLENS_JAEGER_PROTOCOL */
  protocol: 'otlp' | 'thrift';
  /** MESHLENS_TRACE_SAMPLE_RATIO */
  sampleRatio: number;
  /** Overrides of the sampler's and queue's defaults (tests). */
  tuning?: Partial<typeof SAMPLER_DEFAULTS & typeof QUEUE_DEFAULTS & { tickMs: number; requestTimeoutMs: number }>;
  /** Another sender (tests). */
  send?: Sender;
}

export interface Tracer {
  /** Decides what is held, sends what can be sent within `timeoutMs`, counts the rest as dropped (`shutdown`). */
  close(timeoutMs: number): Promise<void>;
}

export async function createTracer(opts: TracerOptions): Promise<Tracer> {
  const t = { ...SAMPLER_DEFAULTS, ...QUEUE_DEFAULTS, tickMs: 500, requestTimeoutMs: 10_000, ...opts.tuning };
  const m = METRICS;
  const exported = new Counter({ name: m.tracerExportedSpans.name, help: m.tracerExportedSpans.help, registers: [opts.registry] });
  const sampledOut = new Counter({ name: m.tracerSampledOutSpans.name, help: m.tracerSampledOutSpans.help, registers: [opts.registry] });
  const dropped = new Counter({
    name: m.tracerDroppedSpans.name,
    help: m.tracerDroppedSpans.help,
    labelNames: m.tracerDroppedSpans.labelNames,
    registers: [opts.registry],
  });
  const send =
    opts.send ?? (opts.protocol === 'thrift' ? jaegerThriftSender(opts.endpoint, t.requestTimeoutMs) : otlpHttpSender(opts.endpoint, t.requestTimeoutMs));
  // One warning per failure streak, not per attempt: a down Jaeger must not flood the logs.
  let failing = false;
  const queue = new ExportQueue({
    send,
    capacity: t.capacity,
    batchSpans: t.batchSpans,
    batchDelayMs: t.batchDelayMs,
    initialBackoffMs: t.initialBackoffMs,
    maxBackoffMs: t.maxBackoffMs,
    maxElapsedMs: t.maxElapsedMs,
    onExported: (n) => {
      exported.inc(n);
      if (failing) opts.logger.info({ endpoint: opts.endpoint }, 'span export recovered');
      failing = false;
    },
    onDropped: (reason, n) => {
      if (n > 0) dropped.inc({ reason }, n);
    },
    onFailure: (message, attempt, delayMs) => {
      if (!failing || delayMs === undefined) opts.logger.warn({ err: message, attempt, retryInMs: delayMs }, delayMs === undefined ? 'span export gave up on a batch' : 'span export failed; retrying');
      failing = true;
    },
  });
  const sampler = new TailSampler({
    ratio: opts.sampleRatio,
    meshConfig: opts.meshConfig,
    decisionWaitMs: t.decisionWaitMs,
    maxHeldSpans: t.maxHeldSpans,
    rememberTraces: t.rememberTraces,
    decayMs: t.decayMs,
    now: Date.now,
    keep: (spans) => queue.enqueue(spans),
    discard: (n) => sampledOut.inc(n),
  });
  new Gauge({
    name: m.tracerQueueSpans.name,
    help: m.tracerQueueSpans.help,
    registers: [opts.registry],
    collect() {
      this.set(sampler.heldCount + queue.size);
    },
  });
  const timer = setInterval(() => sampler.tick(), t.tickMs);
  timer.unref();
  const subscription: Subscription = await opts.bus.subscribe(
    TOPICS.spans,
    TRACER_GROUP,
    // Synchronous hand-off: the commit (and with the memory bus the receivers' answers) never waits on Jaeger.
    async (messages) => {
      for (const msg of messages) sampler.add(msg.value);
    },
    { batch: { minSize: 1, maxWaitMs: 0, sizeOf: (v) => v.length } },
  );
  opts.logger.info({ endpoint: opts.endpoint, protocol: opts.protocol, sampleRatio: opts.sampleRatio }, 'tracer exporting spans');
  return {
    async close(timeoutMs) {
      await subscription.stop();
      clearInterval(timer);
      sampler.flush();
      await queue.close(timeoutMs);
    },
  };
}
