/**
 * lib/bus: the Bus port between ingest and its consumers, and its two implementations (DESIGN.md: one index per
 * folder, named exports only). lib/bus/contract.ts is the test suite both pass.
 */

// The port: topics, messages, subscriptions by consumer group, errors.
export { BusError, TOPICS } from './types';
export type {
  BatchHandler,
  BatchPolicy,
  Bus,
  BusErrorCode,
  BusLogger,
  BusMessage,
  Codec,
  DeadLetter,
  DeliveredMessage,
  MemberHeartbeat,
  PendingStats,
  SubscribeOptions,
  Subscription,
  Topic,
} from './types';

// The memory bus: bounded, in this process; publish resolves when every group committed (the all-in-one).
export { MEMORY_BUS_DEFAULTS, createMemoryBus } from './memory';
export type { MemoryBusOptions } from './memory';

// The Kafka bus: kafkajs, keyed by destination service, acks=all (the split targets).
export { KAFKA_BUS_DEFAULTS, createKafkaBus, toBusError } from './kafka';
export type { KafkaBus, KafkaBusOptions, UndecodableEvent } from './kafka';

// The record codecs: the binary encoding of requests, flows and spans on either bus.
export { flowsCodec, requestsCodec, spansCodec } from './codec';

// Pipeline gauges: what waits on the bus, for /metrics.
export { registerPipelineGauges } from './metrics';
