/** The Bus port and its two implementations (DESIGN.md: one index per folder, named exports only). */
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
export { MEMORY_BUS_DEFAULTS, createMemoryBus } from './memory';
export { registerPipelineGauges } from './metrics';
export { flowsCodec, requestsCodec, spansCodec } from './codec';
export type { MemoryBusOptions } from './memory';
export { KAFKA_BUS_DEFAULTS, createKafkaBus, toBusError } from './kafka';
export type { KafkaBus, KafkaBusOptions, UndecodableEvent } from './kafka';
