/**
 * The Bus port: publish keyed batches to a topic, consume them as a group, commit after the handler
 * succeeded (at-least-once). One contract test suite runs against every implementation (memory, kafka).
 */
import type { Flow, IngestFormat, MeshRequest, RejectReason, Span } from '../model';
import { flowsCodec, requestsCodec, spansCodec } from './codec';

/** How a topic's values cross a wire. The memory bus passes values by reference and never calls it. */
export interface Codec<T> {
  encode(value: T): Buffer;
  decode(bytes: Buffer): T;
}

export interface Topic<T> {
  name: string;
  codec: Codec<T>;
}

export interface BusMessage<T> {
  /** Partitioning key: the destination service, so one service's records stay in order on one partition. */
  key: string;
  value: T;
}

export interface DeliveredMessage<T> extends BusMessage<T> {
  /** Partition and offset, for logs and idempotency tokens (`<topic>-<partition>-<offset>`). */
  partition: number;
  offset: string;
}

/** Called with a batch of messages; resolving commits them, rejecting redelivers them later. */
export type BatchHandler<T> = (messages: DeliveredMessage<T>[]) => Promise<void>;

/**
 * How large a delivery a consumer wants (Kafka's `fetch.min.bytes` / `fetch.max.wait.ms`): the bus waits
 * until the pending messages weigh at least `minSize`, or until `maxWaitMs` passed since it started
 * waiting, whichever comes first. A storage consumer asks for big batches (few large inserts).
 */
export interface BatchPolicy<T> {
  minSize: number;
  maxWaitMs: number;
  /** Weight of one message; default 1 (count messages). E.g. `(records) => records.length`. */
  sizeOf?: (value: T) => number;
  /**
   * Most records (the messages' array lengths) per delivery, at least one message: a group commit closes at
   * this size even when more is waiting. Default: no bound besides the bus's own message limit.
   */
  maxSize?: number;
}

export interface SubscribeOptions<T> {
  batch?: BatchPolicy<T>;
}

export interface Subscription {
  /** Stops fetching, waits for the in-flight handler, commits what it finished. */
  stop(): Promise<void>;
}

/** What a topic holds that is not yet stored: `meshlens_pipeline_pending_records` and `..._oldest_pending_seconds`. */
export interface PendingStats {
  topic: string;
  /** Records (the messages' array lengths) taken in but not yet committed by every group. */
  records: number;
  /** When the oldest of them was published (Unix ms); undefined when there is none. */
  oldestMs: number | undefined;
}

export interface Bus {
  /**
   * Resolves once the messages are durable (CONTRACT.md §3): memory — every consuming group of the topic has
   * committed them (for the aggregator: stored in ClickHouse); kafka — acked by all in-sync replicas.
   * Rejects with a `BusError`; `retriable: true` means "full or unavailable, try again later" and the
   * receivers turn it into 429/503 with `Retry-After`.
   */
  publish<T>(topic: Topic<T>, messages: BusMessage<T>[]): Promise<void>;
  subscribe<T>(topic: Topic<T>, group: string, handler: BatchHandler<T>, options?: SubscribeOptions<T>): Promise<Subscription>;
  /**
   * Delivers everything published so far without batch waits, and resolves once every subscribed group
   * committed it, or after `timeoutMs` (resolving false). For a graceful stop of a process whose bus is
   * not durable (memory); a durable bus (kafka) keeps what is uncommitted and resolves true at once.
   */
  drain(timeoutMs: number): Promise<boolean>;
  /** Per topic, what was taken in and is not yet committed (memory: the whole log; kafka: this consumer's lag). */
  pending(): PendingStats[];
  /** False while the bus cannot take writes (kafka disconnected); feeds `/readyz`. */
  ready(): boolean;
  close(): Promise<void>;
}

/**
 * Where a bus implementation reports what it cannot hand back to a caller: handler failures it will
 * redeliver, undecodable messages, kafkajs's own log lines. The shape is pino's (`logger.warn(fields, msg)`),
 * so the runtime's logger fits as is. Default: silent.
 */
export interface BusLogger {
  error(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

/**
 * `BUS_TOO_LARGE`: one publish holds more than the bus can ever take (the memory bus's whole capacity): not
 * retriable as it is; the receivers answer 413 so the sender splits it.
 */
export type BusErrorCode = 'BUS_FULL' | 'BUS_UNAVAILABLE' | 'BUS_CLOSED' | 'BUS_PUBLISH_FAILED' | 'BUS_TOO_LARGE';

/** Errors carry a code, a retriable flag and a cause (DESIGN.md, after kafkajs and Fastify's FST_ERR_*). */
export class BusError extends Error {
  constructor(
    readonly code: BusErrorCode,
    message: string,
    readonly retriable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BusError';
  }
}

/** A record that could not be parsed, kept with its raw bytes so nothing received is lost. */
export interface DeadLetter {
  receivedAtMs: number;
  receiver: string;
  format: IngestFormat | 'unknown';
  reason: RejectReason;
  message: string;
  /** 1-based line number within the request body, 0 for whole-body rejections. */
  line: number;
  /** The raw input, base64, exactly as received after decompression (its first 64 KiB: see `truncated`). */
  rawBase64: string;
  /** Length of the whole raw input in bytes, when `rawBase64` holds only its beginning. */
  rawBytes?: number;
  /** True when `rawBase64` holds only the first `MAX_DEAD_LETTER_RAW_BYTES` of the input. */
  truncated?: boolean;
}

/**
 * A meshlens process saying it is alive (lib/membership/): every process publishes one every 10 s,
 * and the process serving Prometheus targets lists those heard from recently (CONTRACT.md §6).
 */
export interface MemberHeartbeat {
  /** Unique per process start. */
  instance: string;
  /** The CLI target it runs: `all`, `ingest`, `aggregator`. */
  target: string;
  /** `host:port` of its HTTP port (`/metrics`), as Prometheus should reach it. */
  address: string;
  startedAtMs: number;
  sentAtMs: number;
  /** Sent once when the process stops, so it is unlisted at once rather than after expiry. */
  leaving?: boolean;
}

const json = <T>(): Codec<T> => ({
  encode: (value) => Buffer.from(JSON.stringify(value)),
  decode: (bytes) => JSON.parse(bytes.toString('utf8')) as T,
});

/**
 * The topics meshlens uses; each message value is a batch of records sharing one key. The record topics use
 * the columnar binary codec of ./codec.ts (which still reads the JSON their messages used to be); dead letters
 * and heartbeats are few and stay JSON, readable with any Kafka tool.
 */
export const TOPICS = {
  requests: { name: 'meshlens.requests', codec: requestsCodec } as Topic<MeshRequest[]>,
  flows: { name: 'meshlens.flows', codec: flowsCodec } as Topic<Flow[]>,
  spans: { name: 'meshlens.spans', codec: spansCodec } as Topic<Span[]>,
  deadLetters: { name: 'meshlens.deadletters', codec: json<DeadLetter[]>() } as Topic<DeadLetter[]>,
  /** Keyed by instance. Only the last few intervals matter: Kafka operators may give it a short `retention.ms`. */
  members: { name: 'meshlens.members', codec: json<MemberHeartbeat[]>() } as Topic<MemberHeartbeat[]>,
} as const;
