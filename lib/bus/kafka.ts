/**
 * The Kafka Bus for distributed mode, on kafkajs (DESIGN.md: pure JS; the native clients do not install here).
 *
 * Producing: one idempotent producer (`idempotent: true`, `maxInFlightRequests: 1`, `acks: -1`), keyed by
 * `BusMessage.key` (the destination service) with the Java-compatible murmur2 partitioner, so one service's
 * records stay in order on one partition. Values go through `topic.codec`. kafkajs errors become
 * `BusError`s whose `retriable` follows kafkajs (see `toBusError`).
 * Unlike the memory bus, a publish is not all-or-nothing across partitions: kafkajs sends one produce
 * request per partition leader, and some may be acked when another fails. The caller retries the whole
 * publish; consumers see those messages twice, which at-least-once delivery already obliges them to
 * tolerate.
 *
 * Consuming: one kafkajs consumer per `subscribe`, `groupId` = the group, `fromBeginning: true`,
 * `autoCommit: false`, `eachBatchAutoResolve: false`, one partition at a time. Each kafkajs batch is cut
 * into handler batches of at most `maxBatchSize`; after a handler batch succeeded its offset + 1 is
 * committed explicitly (Kafka's committed offset is the next one to read, kafkajs#540) and only then
 * resolved locally.
 *
 * Handler failures are retried here, inside `eachBatch`, with the same messages, an exponential capped
 * backoff and heartbeats in between, rather than thrown to kafkajs. Throwing would also redeliver (the
 * runner re-fetches from the last resolved offset, node_modules/kafkajs/src/consumer/runner.js), but
 * through kafkajs's retrier: after `retry.retries` attempts the consumer crashes and restarts with a
 * group rejoin, and an error whose name is TypeError/RangeError/ReferenceError/SyntaxError counts as
 * unrecoverable, so the consumer crashes *without* restarting and the group silently stops consuming
 * (src/retry/index.js, src/consumer/index.js `onCrash`). Retrying in place keeps the memory bus's
 * semantics: never skipped, nothing later delivered first. The loop gives up the batch (uncommitted, so
 * it is redelivered to whoever owns the partition next) when the subscription stops or the group
 * rebalances (the heartbeat throws, and kafkajs rejoins).
 *
 * Undecodable messages (codec throws, or a null value): the rest of the batch is delivered; each
 * undecodable one is forwarded with its raw bytes to the dead-letter topic (`TOPICS.deadLetters`) before the
 * batch commits, so nothing received is lost and it can be replayed after a fix. Its `message` carries the
 * codec's error (e.g. the binary codec's "unknown bus message format version 2", from a newer producer); its
 * reason is `malformed_json`, the closest of lib/model's reasons, though the record topics are binary now
 * (lib/bus/codec.ts). An undecodable message *on* the dead-letter topic is skipped, logged at error level
 * with its coordinates. Both are reported to `onUndecodable` for a counter.
 *
 * Topics: at connect the admin client creates the meshlens topics that are missing (`partitions`,
 * `replicationFactor`), and any other topic on first use; `createTopics: false` leaves that to the
 * operator. `ready()` is true while the producer is connected.
 */
import { Kafka, Partitioners, logLevel as KafkaLogLevel } from 'kafkajs';
import type { Admin, Consumer, ConsumerConfig, EachBatchPayload, KafkaConfig, KafkaMessage, LogEntry, Producer } from 'kafkajs';
import { BusError, TOPICS } from './types';
import type { BatchHandler, Bus, BusErrorCode, BusLogger, BusMessage, DeadLetter, DeliveredMessage, PendingStats, SubscribeOptions, Subscription, Topic } from './types';

export interface UndecodableEvent {
  topic: string;
  partition: number;
  offset: string;
  key: string;
  error: unknown;
  /** `dead-lettered`: forwarded to the dead-letter topic; `skipped`: it was on the dead-letter topic itself. */
  action: 'dead-lettered' | 'skipped';
}

export interface KafkaBusOptions {
  brokers: string[];
  clientId: string;
  /** kafkajs's log lines, handler failures and undecodable messages go here. Default: silent. */
  logger?: BusLogger;
  /** The most verbose kafkajs level forwarded to `logger`. Default `warn`. */
  kafkaLogLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Create missing topics with the admin client. Default true. */
  createTopics?: boolean;
  /** Partitions of the topics this bus creates. Default 6. */
  partitions?: number;
  /** Replication factor of the topics this bus creates. Default: the broker's `default.replication.factor`. */
  replicationFactor?: number;
  /** Topics created at connect. Default: every topic in `TOPICS`. */
  topics?: Topic<unknown>[];
  /** Most messages per handler call. Default 500. */
  maxBatchSize?: number;
  /** First redelivery delay after a handler rejected; doubles per consecutive failure. Default 100 ms. */
  retryInitialMs?: number;
  /** Cap on the redelivery delay; keep it well under the consumer session timeout. Default 5,000 ms. */
  retryMaxMs?: number;
  /** Called once per undecodable message (e.g. to count it). */
  onUndecodable?: (event: UndecodableEvent) => void;
  /** Anything else kafkajs's client takes: ssl, sasl, timeouts, retry. */
  kafka?: Omit<KafkaConfig, 'brokers' | 'clientId' | 'logCreator' | 'logLevel'>;
  /** Anything else kafkajs's consumers take: sessionTimeout, heartbeatInterval, maxBytesPerPartition... */
  consumer?: Omit<ConsumerConfig, 'groupId'>;
}

export interface KafkaBus extends Bus {
  /**
   * Resolves once the producer is connected and the topics exist; rejects with a `BusError`
   * (`BUS_UNAVAILABLE`) when that fails, while the bus keeps retrying in the background.
   * Not needed before `publish`/`subscribe`, which wait for it themselves.
   */
  connect(): Promise<void>;
}

export const KAFKA_BUS_DEFAULTS = {
  partitions: 6,
  maxBatchSize: 500,
  retryInitialMs: 100,
  retryMaxMs: 5_000,
  reconnectInitialMs: 1_000,
  reconnectMaxMs: 30_000,
} as const;

/** kafkajs wraps the last error of its internal retries; the flag that matters is the original one's. */
function originalCause(err: object): object {
  let e = err;
  for (let i = 0; i < 10; i++) {
    const cause = (e as { cause?: unknown }).cause;
    if (cause === null || typeof cause !== 'object' || cause === e) break;
    e = cause;
  }
  return e;
}

/**
 * Maps a kafkajs error to a `BusError`. `retriable` is kafkajs's own `error.retriable`, except for
 * `KafkaJSNumberOfRetriesExceeded` (a `KafkaJSNonRetriableError` that means "kafkajs gave up retrying"):
 * there the original cause decides, as kafkajs itself does when deciding to restart a crashed consumer
 * (src/consumer/index.js `onCrash`). A broker that is down for longer than kafkajs's retries is still
 * "try again later" to an HTTP client. Errors that are not kafkajs's are not retriable.
 */
export function toBusError(err: unknown, context: string, codes: { retriable: BusErrorCode; fatal: BusErrorCode } = { retriable: 'BUS_UNAVAILABLE', fatal: 'BUS_PUBLISH_FAILED' }): BusError {
  if (err instanceof BusError) return err;
  let retriable = false;
  if (err !== null && typeof err === 'object') {
    const e = err as { name?: unknown; retriable?: unknown };
    retriable =
      e.name === 'KafkaJSNumberOfRetriesExceeded' ? (originalCause(err) as { retriable?: unknown }).retriable === true : e.retriable === true;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new BusError(retriable ? codes.retriable : codes.fatal, `${context}: ${message}`, retriable, { cause: err });
}

const LEVELS = { error: KafkaLogLevel.ERROR, warn: KafkaLogLevel.WARN, info: KafkaLogLevel.INFO, debug: KafkaLogLevel.DEBUG } as const;

function logCreatorFor(logger: BusLogger | undefined) {
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      if (!logger) return;
      const { message, ...fields } = log;
      const f = { ...fields, kafkajs: namespace };
      if (level <= KafkaLogLevel.ERROR) logger.error(f, message);
      else if (level === KafkaLogLevel.WARN) logger.warn(f, message);
      else if (level === KafkaLogLevel.INFO) logger.info(f, message);
      else logger.debug(f, message);
    };
}

/** A subscription's stop flag, shared with its eachBatch loop. */
export interface SubState {
  stopping: boolean;
  /** Ends the current redelivery backoff early (on stop). */
  wake: (() => void) | null;
}

export interface Undecodable {
  message: KafkaMessage;
  key: string;
  error: unknown;
}

function pause(ms: number, state: SubState): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      state.wake = null;
      resolve();
    };
    const timer = setTimeout(done, ms);
    state.wake = done;
  });
}

/**
 * One partition's consumer lag as this consumer last saw it (`Bus.pending()`): Kafka counts messages, meshlens
 * records, so records are estimated from the records per message of the last batch handled.
 */
export interface PartitionLag {
  messages: number;
  recordsPerMessage: number;
  /** Producer timestamp of the oldest uncommitted message known; undefined when none is known. */
  oldestMs: number | undefined;
}

export interface EachBatchDeps<T> {
  topic: Topic<T>;
  group: string;
  handler: BatchHandler<T>;
  state: SubState;
  maxBatchSize: number;
  backoffMs: (failures: number) => number;
  logger?: BusLogger | undefined;
  deadLetter: (topic: string, partition: number, bad: Undecodable[]) => Promise<void>;
  /** Where each partition's lag is kept for `pending()`; keyed by partition. */
  lag?: Map<number, PartitionLag>;
}

/**
 * The `eachBatch` of one subscription (exported for unit tests of the loop; not part of lib/bus's surface).
 * Per handler batch: decode, dead-letter what does not decode, call the handler until it succeeds (same
 * messages, backoff, heartbeat), then commit offset + 1 and resolve. Returns early, leaving the rest
 * uncommitted, when the subscription stops or kafkajs stops running this batch.
 */
export function createEachBatch<T>(deps: EachBatchDeps<T>): (payload: EachBatchPayload) => Promise<void> {
  const { topic, group, handler, state, maxBatchSize, backoffMs, logger, deadLetter, lag } = deps;
  return async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
    const all = batch.messages;
    // kafkajs always sets it; the unit tests' hand-built payloads may not.
    const high = typeof batch.highWatermark === 'string' ? BigInt(batch.highWatermark) : undefined;
    for (let start = 0; start < all.length; start += maxBatchSize) {
      if (state.stopping || !isRunning() || isStale()) return;
      const chunk = all.slice(start, start + maxBatchSize);
      const delivered: DeliveredMessage<T>[] = [];
      const bad: Undecodable[] = [];
      let records = 0;
      for (const m of chunk) {
        const key = m.key ? m.key.toString('utf8') : '';
        try {
          if (m.value === null) throw new Error('null value (tombstone)');
          const value = topic.codec.decode(m.value);
          records += Array.isArray(value) ? value.length : 1;
          delivered.push({ key, value, partition: batch.partition, offset: m.offset });
        } catch (error) {
          bad.push({ message: m, key, error });
        }
      }
      const first = chunk[0] as KafkaMessage;
      const last = (chunk[chunk.length - 1] as KafkaMessage).offset;
      if (high !== undefined) lag?.set(batch.partition, {
        messages: Number(high - BigInt(first.offset)),
        recordsPerMessage: records / chunk.length,
        oldestMs: Number(first.timestamp) || undefined,
      });

      let deadLettered = bad.length === 0;
      for (let failures = 0; ; ) {
        try {
          if (!deadLettered) {
            await deadLetter(batch.topic, batch.partition, bad);
            deadLettered = true;
          }
          if (delivered.length > 0) await handler(delivered);
          break;
        } catch (err) {
          failures++;
          const delay = backoffMs(failures);
          logger?.error(
            { err, topic: batch.topic, group, partition: batch.partition, firstOffset: chunk[0]?.offset, lastOffset: last, failures },
            `bus handler failed; redelivering the same ${chunk.length} messages in ${delay} ms`,
          );
          await pause(delay, state);
          // Leave the batch uncommitted: the partition's next owner (or this consumer, after a rejoin) gets it again.
          if (state.stopping || !isRunning() || isStale()) return;
          // Keeps the group membership alive; throws when the group rebalances, and kafkajs rejoins.
          await heartbeat();
        }
      }

      // Kafka's committed offset is the next one to read.
      await commitOffsetsIfNecessary({
        topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: (BigInt(last) + 1n).toString() }] }],
      });
      resolveOffset(last);
      const next = all[start + maxBatchSize];
      const behind = lag?.get(batch.partition);
      if (behind && high !== undefined) {
        behind.messages = Math.max(0, Number(high - BigInt(last) - 1n));
        behind.oldestMs = next ? Number(next.timestamp) || undefined : undefined;
      }
      await heartbeat();
    }
  };
}

export function createKafkaBus(options: KafkaBusOptions): KafkaBus {
  const logger = options.logger;
  const partitions = options.partitions ?? KAFKA_BUS_DEFAULTS.partitions;
  const maxBatchSize = options.maxBatchSize ?? KAFKA_BUS_DEFAULTS.maxBatchSize;
  const retryInitialMs = options.retryInitialMs ?? KAFKA_BUS_DEFAULTS.retryInitialMs;
  const retryMaxMs = Math.max(retryInitialMs, options.retryMaxMs ?? KAFKA_BUS_DEFAULTS.retryMaxMs);
  const createTopics = options.createTopics ?? true;
  const initialTopics = (options.topics ?? Object.values(TOPICS)).map((t) => t.name);
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) throw new RangeError(`createKafkaBus: maxBatchSize must be a positive integer, got ${maxBatchSize}`);
  if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError(`createKafkaBus: partitions must be a positive integer, got ${partitions}`);

  const kafka = new Kafka({
    ...options.kafka,
    brokers: options.brokers,
    clientId: options.clientId,
    logLevel: LEVELS[options.kafkaLogLevel ?? 'warn'],
    logCreator: logCreatorFor(logger),
  });
  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    // kafkajs refuses an idempotent producer without retries. Its retries are bounded (client default 5),
    // not infinite as kafkajs would like for exactly-once: a publish must fail in bounded time so that the
    // receivers can answer 503 + Retry-After; a retried publish may then duplicate, which at-least-once allows.
    ...((options.kafka?.retry?.retries ?? 1) < 1 ? { retry: { ...options.kafka?.retry, retries: 1 } } : {}),
    // Explicit, which also silences kafkajs 2's "default partitioner changed" warning.
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: !createTopics,
  });
  const admin: Admin = kafka.admin();

  let closed = false;
  let closing: Promise<void> | null = null;
  let producerConnected = false;
  producer.on(producer.events.CONNECT, () => {
    producerConnected = true;
  });
  producer.on(producer.events.DISCONNECT, () => {
    producerConnected = false;
  });

  const closedError = (what: string) => new BusError('BUS_CLOSED', `bus is closed; cannot ${what}`, false);

  // --- connection, with background retries so that /readyz recovers without traffic ---
  let connecting: Promise<void> | null = null;
  let reconnectTimer: NodeJS.Timeout | null = null;
  let reconnectDelay: number = KAFKA_BUS_DEFAULTS.reconnectInitialMs;

  async function connectOnce(): Promise<void> {
    await producer.connect();
    if (createTopics) {
      await admin.connect();
      await Promise.all(initialTopics.map(ensureTopic));
    }
  }

  function connect(): Promise<void> {
    if (closed) return Promise.reject(closedError('connect'));
    connecting ??= connectOnce().then(
      () => {
        reconnectDelay = KAFKA_BUS_DEFAULTS.reconnectInitialMs;
      },
      (err: unknown) => {
        connecting = null;
        const busErr = toBusError(err, 'cannot connect to Kafka', { retriable: 'BUS_UNAVAILABLE', fatal: 'BUS_UNAVAILABLE' });
        if (!closed) {
          logger?.error({ err, brokers: options.brokers, retryInMs: reconnectDelay }, busErr.message);
          // A publish may have started this attempt while a retry was pending: keep one timer only.
          if (reconnectTimer !== null) clearTimeout(reconnectTimer);
          reconnectTimer = setTimeout(() => {
            reconnectTimer = null;
            connect().catch(() => undefined);
          }, reconnectDelay);
          reconnectDelay = Math.min(reconnectDelay * 2, KAFKA_BUS_DEFAULTS.reconnectMaxMs);
        }
        throw busErr;
      },
    );
    return connecting;
  }

  // --- topics ---
  const topicReady = new Map<string, Promise<void>>();
  function ensureTopic(name: string): Promise<void> {
    if (!createTopics) return Promise.resolve();
    let ready = topicReady.get(name);
    if (!ready) {
      ready = (async () => {
        const existing = await admin.listTopics();
        if (existing.includes(name)) return;
        // Resolves false (no throw) when another instance created it meanwhile.
        const created = await admin.createTopics({
          waitForLeaders: true,
          topics: [{ topic: name, numPartitions: partitions, ...(options.replicationFactor !== undefined ? { replicationFactor: options.replicationFactor } : {}) }],
        });
        if (created) logger?.info({ topic: name, partitions }, 'created Kafka topic');
      })();
      topicReady.set(name, ready);
      ready.catch(() => topicReady.delete(name));
    }
    return ready;
  }

  // --- consuming ---
  const subscriptions = new Set<{ stop(): Promise<void> }>();
  /** Per subscribed topic and group: each partition's lag as last seen (`pending()`). */
  const lags = new Map<string, { topic: string; partitions: Map<number, PartitionLag> }>();

  function backoffMs(failures: number): number {
    return Math.min(retryMaxMs, retryInitialMs * 2 ** Math.min(failures - 1, 30));
  }

  async function deadLetter(topic: string, partition: number, bad: Undecodable[]): Promise<void> {
    if (topic === TOPICS.deadLetters.name) {
      for (const b of bad) {
        logger?.error({ topic, partition, offset: b.message.offset, key: b.key, err: b.error }, 'skipping an undecodable message on the dead-letter topic');
        options.onUndecodable?.({ topic, partition, offset: b.message.offset, key: b.key, error: b.error, action: 'skipped' });
      }
      return;
    }
    const letters: DeadLetter[] = bad.map((b) => ({
      receivedAtMs: Number(b.message.timestamp) || Date.now(),
      receiver: `bus:${topic}`,
      format: 'unknown',
      reason: 'malformed_json',
      message: `${topic}[${partition}]@${b.message.offset} key=${b.key}: ${b.error instanceof Error ? b.error.message : String(b.error)}`,
      line: 0,
      rawBase64: b.message.value ? b.message.value.toString('base64') : '',
    }));
    await publish(TOPICS.deadLetters, [{ key: topic, value: letters }]);
    for (const b of bad) {
      logger?.error({ topic, partition, offset: b.message.offset, key: b.key, err: b.error }, 'forwarded an undecodable message to the dead-letter topic');
      options.onUndecodable?.({ topic, partition, offset: b.message.offset, key: b.key, error: b.error, action: 'dead-lettered' });
    }
  }

  /** Kafka keeps what is not committed; a restarted consumer picks it up. Nothing to drain here. */
  async function drain(): Promise<boolean> {
    return true;
  }

  async function subscribe<T>(topic: Topic<T>, group: string, handler: BatchHandler<T>, subscribeOptions?: SubscribeOptions<T>): Promise<Subscription> {
    if (closed) throw closedError(`subscribe to ${topic.name}`);
    await connect();
    try {
      await ensureTopic(topic.name);
    } catch (err) {
      throw toBusError(err, `cannot create topic ${topic.name}`);
    }
    // A batch policy becomes the broker-side fetch wait: Kafka counts bytes, not records, so the minimum is
    // an estimate (about 256 bytes per unit of `sizeOf`, capped at 8 MiB).
    const batch = subscribeOptions?.batch;
    const fetchWait = batch ? { minBytes: Math.min(batch.minSize * 256, 8 << 20), maxWaitTimeInMs: batch.maxWaitMs } : {};
    const consumer: Consumer = kafka.consumer({ ...options.consumer, ...fetchWait, groupId: group });
    const state: SubState = { stopping: false, wake: null };
    const lagKey = `${topic.name}\u0000${group}`;
    const lag = new Map<number, PartitionLag>();
    lags.set(lagKey, { topic: topic.name, partitions: lag });
    consumer.on(consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      if (!restart) logger?.error({ err: error, topic: topic.name, group }, 'Kafka consumer crashed and will not restart');
    });
    let stopped: Promise<void> | null = null;
    const sub = {
      stop(): Promise<void> {
        stopped ??= (async () => {
          state.stopping = true;
          state.wake?.();
          try {
            // Waits for the in-flight eachBatch (kafkajs's runner waits for its fetchers to drain).
            await consumer.disconnect();
          } catch (err) {
            logger?.warn({ err, topic: topic.name, group }, 'error while stopping a Kafka consumer');
          }
          subscriptions.delete(sub);
          lags.delete(lagKey);
        })();
        return stopped;
      },
    };
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic.name], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: createEachBatch({ topic, group, handler, state, maxBatchSize, backoffMs, logger, deadLetter, lag }),
      });
    } catch (err) {
      await sub.stop();
      throw toBusError(err, `cannot subscribe group ${group} to ${topic.name}`, { retriable: 'BUS_UNAVAILABLE', fatal: 'BUS_UNAVAILABLE' });
    }
    subscriptions.add(sub);
    if (closed) await sub.stop();
    return sub;
  }

  // --- producing ---
  async function publish<T>(topic: Topic<T>, messages: BusMessage<T>[]): Promise<void> {
    if (closed) throw closedError(`publish to ${topic.name}`);
    if (messages.length === 0) return;
    let encoded: { key: string; value: Buffer }[];
    try {
      encoded = messages.map((m) => ({ key: m.key, value: topic.codec.encode(m.value) }));
    } catch (err) {
      throw new BusError('BUS_PUBLISH_FAILED', `cannot encode a message for ${topic.name}`, false, { cause: err });
    }
    await connect();
    try {
      await ensureTopic(topic.name);
    } catch (err) {
      throw toBusError(err, `cannot create topic ${topic.name}`);
    }
    try {
      await producer.send({ topic: topic.name, acks: -1, messages: encoded });
    } catch (err) {
      if (closed) throw new BusError('BUS_CLOSED', `bus closed while publishing to ${topic.name}`, false, { cause: err });
      throw toBusError(err, `publish to ${topic.name} failed`);
    }
  }

  /** Consumer lag of this process's subscriptions; a topic it only publishes to is Kafka's to keep. */
  function pending(): PendingStats[] {
    const byTopic = new Map<string, PendingStats>();
    for (const { topic, partitions } of lags.values()) {
      const p = byTopic.get(topic) ?? { topic, records: 0, oldestMs: undefined };
      for (const l of partitions.values()) {
        p.records += Math.round(l.messages * l.recordsPerMessage);
        if (l.oldestMs !== undefined && (p.oldestMs === undefined || l.oldestMs < p.oldestMs)) p.oldestMs = l.oldestMs;
      }
      byTopic.set(topic, p);
    }
    return [...byTopic.values()];
  }

  connect().catch(() => undefined);

  return {
    publish,
    subscribe,
    drain,
    pending,
    connect,
    ready: () => producerConnected && !closed,
    close(): Promise<void> {
      closing ??= (async () => {
        closed = true;
        if (reconnectTimer !== null) clearTimeout(reconnectTimer);
        reconnectTimer = null;
        await Promise.allSettled([...subscriptions].map((s) => s.stop()));
        await Promise.allSettled([connecting]);
        for (const [what, disconnect] of [
          ['producer', () => producer.disconnect()],
          ['admin', () => admin.disconnect()],
        ] as const) {
          try {
            await disconnect();
          } catch (err) {
            logger?.warn({ err }, `error while disconnecting the Kafka ${what}`);
          }
        }
        producerConnected = false;
      })();
      return closing;
    },
  };
}
