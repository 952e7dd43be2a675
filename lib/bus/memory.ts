/**
 * The in-memory Bus for the all-in-one process: Kafka's consumer-group semantics without durability.
 *
 * Per topic there is one append-only log (one partition, 0) of `DeliveredMessage`s holding the published
 * values by reference (the codec is never called). Every group and every redelivery sees the same message
 * objects, so handlers must treat them as read-only. Each consumer group has a committed offset; the
 * group's handler gets the messages from that offset on, at most `maxBatchSize` at a time and one call at
 * a time per group, and the offset moves only when the handler's promise resolves. A rejected (or
 * throwing) handler gets the very same messages again after an exponential, capped backoff: nothing is
 * skipped, nothing later overtakes them.
 *
 * Retention: a message is dropped from memory once every group that ever subscribed to the topic has
 * committed past it. A topic nobody subscribed to yet keeps everything, and a group that subscribes late
 * starts at the oldest retained message (Kafka's `fromBeginning`). A group whose subscribers all stopped
 * keeps its offset and keeps holding messages, so a re-subscribe continues where it left off
 * (at-least-once across restarts of a consumer inside the process).
 *
 * Bound: a topic holds at most `capacity` messages that some group has not committed (or, with no group
 * yet, at most `capacity` messages). A publish that does not fit as a whole rejects with
 * `BusError('BUS_FULL', retriable=true)` and lands nothing; the receivers answer 429/503 + Retry-After.
 * A group that stopped for good therefore fills the bus: that is the backpressure working, not a leak.
 *
 * Several subscribers of one group on one topic share it: batches are dealt to them round-robin, still one
 * batch in flight per group, so order and commit-after-success hold for the group as a whole. (Kafka
 * splits partitions between them instead; the memory bus has one partition.)
 *
 * Delivery is driven by one `setImmediate` per event-loop turn for all topics with news (never inside
 * `publish`), plus the handler promises' own continuations; the only timers are the per-group retry
 * backoffs, cleared on `close()` and when a group loses its last subscriber.
 */
import { BusError } from './types';
import type { BatchHandler, BatchPolicy, Bus, BusLogger, BusMessage, DeliveredMessage, SubscribeOptions, Subscription, Topic } from './types';

export interface MemoryBusOptions {
  /** Most un-committed messages a topic holds; a publish that would exceed it rejects with BUS_FULL. Default 10,000. */
  capacity?: number;
  /** Most messages per handler call. Default 500. */
  maxBatchSize?: number;
  /** First redelivery delay after a handler rejected; doubles per consecutive failure. Default 100 ms. */
  retryInitialMs?: number;
  /** Cap on the redelivery delay. Default 5,000 ms. */
  retryMaxMs?: number;
  /** Handler failures are reported here (they are never thrown at anyone). Default: silent. */
  logger?: BusLogger;
}

export const MEMORY_BUS_DEFAULTS = {
  capacity: 10_000,
  maxBatchSize: 500,
  retryInitialMs: 100,
  retryMaxMs: 5_000,
} as const;

type AnyMessage = DeliveredMessage<unknown>;

interface Subscriber {
  handler: BatchHandler<unknown>;
  stopping: Promise<void> | null;
}

interface Group {
  name: string;
  /** Absolute offset of the next message to deliver; everything before it is committed. */
  committed: number;
  subscribers: Subscriber[];
  /** Round-robin cursor over `subscribers`. */
  turn: number;
  /** The in-flight handler call, already chained to its commit/backoff; never rejects. */
  inFlight: Promise<void> | null;
  inFlightBy: Subscriber | null;
  failures: number;
  retryTimer: NodeJS.Timeout | null;
  /** From the group's first subscribe; the group waits for this much before a delivery. */
  batch: BatchPolicy<unknown> | undefined;
  /** Running while a delivery waits for `batch.minSize`; fires at `batch.maxWaitMs` at the latest. */
  waitTimer: NodeJS.Timeout | null;
  waitingSince: number;
  /** After a failure: the absolute end offset of the failed batch, so the redelivery is exactly that batch. */
  retryEnd: number;
}

interface TopicLog {
  name: string;
  /** `entries[i]` has offset `base + i`; slots before `head` are released (undefined) and await compaction. */
  entries: (AnyMessage | undefined)[];
  base: number;
  head: number;
  groups: Map<string, Group>;
}

/** Compact the released prefix once it is this long and at least half of the array. */
const COMPACT_MIN = 1024;

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`createMemoryBus: ${name} must be a positive integer, got ${value}`);
  return value;
}

export function createMemoryBus(options: MemoryBusOptions = {}): Bus {
  const capacity = positiveInt('capacity', options.capacity, MEMORY_BUS_DEFAULTS.capacity);
  const maxBatchSize = positiveInt('maxBatchSize', options.maxBatchSize, MEMORY_BUS_DEFAULTS.maxBatchSize);
  const retryInitialMs = positiveInt('retryInitialMs', options.retryInitialMs, MEMORY_BUS_DEFAULTS.retryInitialMs);
  const retryMaxMs = Math.max(retryInitialMs, positiveInt('retryMaxMs', options.retryMaxMs, MEMORY_BUS_DEFAULTS.retryMaxMs));
  const logger = options.logger;

  const topics = new Map<string, TopicLog>();
  let closed = false;
  let closing: Promise<void> | null = null;
  let draining = false;

  // One immediate per event-loop turn pumps every topic that got messages or subscribers since the last one.
  const dirty = new Set<TopicLog>();
  let immediate: NodeJS.Immediate | null = null;

  function topicLog(name: string): TopicLog {
    let t = topics.get(name);
    if (!t) {
      t = { name, entries: [], base: 0, head: 0, groups: new Map() };
      topics.set(name, t);
    }
    return t;
  }

  function schedule(t: TopicLog): void {
    if (closed) return;
    dirty.add(t);
    immediate ??= setImmediate(pump);
  }

  function pump(): void {
    immediate = null;
    const ts = [...dirty];
    dirty.clear();
    for (const t of ts) for (const g of t.groups.values()) deliver(t, g);
  }

  function backoffMs(failures: number): number {
    return Math.min(retryMaxMs, retryInitialMs * 2 ** Math.min(failures - 1, 30));
  }

  /** True when the group should wait for more messages; arms the wait timer once per wait. */
  function shouldWait(t: TopicLog, g: Group, from: number, to: number): boolean {
    const policy = g.batch;
    if (policy === undefined || draining || to - from >= maxBatchSize) return false;
    let size = 0;
    for (let i = from; i < to && size < policy.minSize; i++) {
      size += policy.sizeOf ? policy.sizeOf((t.entries[i] as AnyMessage).value) : 1;
    }
    if (size >= policy.minSize) return false;
    const now = Date.now();
    if (g.waitTimer === null) {
      if (g.waitingSince === 0) g.waitingSince = now;
      const left = g.waitingSince + policy.maxWaitMs - now;
      if (left <= 0) return false;
      g.waitTimer = setTimeout(() => {
        g.waitTimer = null;
        deliver(t, g, true);
      }, left);
    }
    return true;
  }

  function deliver(t: TopicLog, g: Group, waited = false): void {
    if (closed || g.inFlight !== null || g.retryTimer !== null || g.subscribers.length === 0) return;
    const from = g.committed - t.base;
    if (from >= t.entries.length) return;
    // A redelivery (failures > 0) is exactly the failed batch, never more: consumers derive idempotency
    // tokens from the batch's first and last offset. It never waits either.
    const to = g.failures > 0 ? g.retryEnd - t.base : Math.min(t.entries.length, from + maxBatchSize);
    if (!waited && g.failures === 0 && shouldWait(t, g, from, to)) return;
    if (g.waitTimer !== null) clearTimeout(g.waitTimer);
    g.waitTimer = null;
    g.waitingSince = 0;
    const batch = t.entries.slice(from, to) as AnyMessage[];
    const end = t.base + to;
    const sub = g.subscribers[g.turn++ % g.subscribers.length] as Subscriber;

    let result: Promise<void>;
    try {
      result = Promise.resolve(sub.handler(batch));
    } catch (err) {
      result = Promise.reject(err);
    }
    g.inFlightBy = sub;
    g.inFlight = result.then(
      () => {
        g.inFlight = null;
        g.inFlightBy = null;
        g.failures = 0;
        g.committed = end;
        release(t);
        deliver(t, g);
      },
      (err: unknown) => {
        g.inFlight = null;
        g.inFlightBy = null;
        g.failures++;
        g.retryEnd = end;
        const delay = backoffMs(g.failures);
        logger?.error(
          {
            topic: t.name,
            group: g.name,
            firstOffset: batch[0]?.offset,
            lastOffset: batch[batch.length - 1]?.offset,
            failures: g.failures,
            err,
          },
          `bus handler failed; redelivering the same ${batch.length} messages in ${delay} ms`,
        );
        if (closed || g.subscribers.length === 0) return;
        g.retryTimer = setTimeout(() => {
          g.retryTimer = null;
          deliver(t, g);
        }, delay);
      },
    );
  }

  /** Drops the messages every group has committed. */
  function release(t: TopicLog): void {
    let low = Infinity;
    for (const g of t.groups.values()) if (g.committed < low) low = g.committed;
    const upTo = low - t.base;
    if (upTo <= t.head) return;
    for (let i = t.head; i < upTo; i++) t.entries[i] = undefined;
    t.head = upTo;
    if (t.head >= COMPACT_MIN && t.head * 2 >= t.entries.length) {
      t.entries = t.entries.slice(t.head);
      t.base += t.head;
      t.head = 0;
    }
  }

  function stopSubscriber(t: TopicLog, g: Group, sub: Subscriber): Promise<void> {
    if (sub.stopping) return sub.stopping;
    const i = g.subscribers.indexOf(sub);
    if (i >= 0) g.subscribers.splice(i, 1);
    if (g.subscribers.length === 0 && g.retryTimer !== null) {
      // The next subscriber of the group starts from the committed offset right away.
      clearTimeout(g.retryTimer);
      g.retryTimer = null;
    }
    if (g.subscribers.length === 0 && g.waitTimer !== null) {
      clearTimeout(g.waitTimer);
      g.waitTimer = null;
      g.waitingSince = 0;
    }
    const inFlight = g.inFlightBy === sub ? g.inFlight : null;
    sub.stopping = inFlight ?? Promise.resolve();
    return sub.stopping;
  }

  return {
    async publish<T>(topic: Topic<T>, messages: BusMessage<T>[]): Promise<void> {
      if (closed) throw new BusError('BUS_CLOSED', `bus is closed; cannot publish to ${topic.name}`, false);
      const n = messages.length;
      if (n === 0) return;
      if (n > capacity) {
        // Would never fit: retrying cannot help, so this is not retriable.
        throw new BusError('BUS_PUBLISH_FAILED', `publish of ${n} messages to ${topic.name} exceeds the bus capacity of ${capacity}`, false);
      }
      const t = topicLog(topic.name);
      const held = t.entries.length - t.head;
      if (held + n > capacity) {
        throw new BusError('BUS_FULL', `topic ${topic.name} holds ${held} un-committed messages (capacity ${capacity}); cannot take ${n} more`, true);
      }
      let offset = t.base + t.entries.length;
      for (let i = 0; i < n; i++) {
        const m = messages[i] as BusMessage<T>;
        t.entries.push({ key: m.key, value: m.value, partition: 0, offset: String(offset++) });
      }
      schedule(t);
    },

    async subscribe<T>(topic: Topic<T>, group: string, handler: BatchHandler<T>, options?: SubscribeOptions<T>): Promise<Subscription> {
      if (closed) throw new BusError('BUS_CLOSED', `bus is closed; cannot subscribe to ${topic.name}`, false);
      const t = topicLog(topic.name);
      let g = t.groups.get(group);
      if (!g) {
        g = {
          name: group,
          committed: t.base + t.head,
          subscribers: [],
          turn: 0,
          inFlight: null,
          inFlightBy: null,
          failures: 0,
          retryTimer: null,
          batch: options?.batch as BatchPolicy<unknown> | undefined,
          waitTimer: null,
          waitingSince: 0,
          retryEnd: 0,
        };
        t.groups.set(group, g);
      }
      const sub: Subscriber = { handler: handler as BatchHandler<unknown>, stopping: null };
      g.subscribers.push(sub);
      schedule(t);
      const grp = g;
      return { stop: () => stopSubscriber(t, grp, sub) };
    },

    async drain(timeoutMs: number): Promise<boolean> {
      draining = true;
      try {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          let pending = false;
          for (const t of topics.values()) {
            for (const g of t.groups.values()) {
              if (g.subscribers.length === 0 || g.committed >= t.base + t.entries.length) continue;
              pending = true;
              if (g.waitTimer !== null) clearTimeout(g.waitTimer);
              g.waitTimer = null;
              deliver(t, g);
            }
          }
          if (!pending) return true;
          if (closed || Date.now() >= deadline) return false;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      } finally {
        draining = false;
      }
    },

    ready(): boolean {
      return !closed;
    },

    close(): Promise<void> {
      if (closing) return closing;
      closed = true;
      if (immediate !== null) clearImmediate(immediate);
      immediate = null;
      dirty.clear();
      const inFlight: Promise<void>[] = [];
      for (const t of topics.values()) {
        for (const g of t.groups.values()) {
          if (g.retryTimer !== null) clearTimeout(g.retryTimer);
          g.retryTimer = null;
          if (g.waitTimer !== null) clearTimeout(g.waitTimer);
          g.waitTimer = null;
          if (g.inFlight) inFlight.push(g.inFlight);
        }
      }
      closing = Promise.all(inFlight).then(() => undefined);
      return closing;
    },
  };
}
