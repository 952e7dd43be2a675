/**
 * The tracer target (issue 11, item 4): spans from the bus to Jaeger (OTLP/HTTP, or Jaeger Thrift over HTTP),
 * with canary-aware tail sampling, under a consumer group of its own (tracer.ts says why).
 */

// The target: consume, sample, export, close.
export { TRACER_GROUP, createTracer } from './tracer';
export type { Tracer, TracerOptions } from './tracer';

// Sampling: what is kept (errors, denials, canaries, a ratio of the rest) and why.
export { SAMPLER_DEFAULTS, TailSampler, underRatio } from './sampler';
export type { KeepReason, SamplerOptions } from './sampler';

// Export: the bounded retrying queue and its two senders, OTLP/HTTP and Jaeger Thrift.
export { ExportQueue, parseRetryAfter, QUEUE_DEFAULTS } from './queue';
export type { QueueOptions, SendResult, Sender } from './queue';
export { encodeOtlpTraces, otlpTracesUrl } from './otlp';
export { encodeJaegerBatch, jaegerTags, jaegerThriftSender } from './jaeger';
export type { JaegerTag } from './jaeger';
