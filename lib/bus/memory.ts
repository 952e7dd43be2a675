/**
 * The in-memory Bus for the all-in-one process: Kafka's consumer-group semantics, and an end-to-end
 * acknowledgement in place of Kafka's durability.
 *
 * Per topic there is one append-only log (one partition, 0) of `DeliveredMessage`s holding the published
 * values by reference (the codec is never called). Every group and every redelivery sees the same message
 * objects, so handlers must treat them as read-only. Each consumer group has a committed offset; the
 * group's handler gets the messages from that offset on, one call at a time per group, and the offset moves
 * only when the handler's promise resolves. A rejected (or throwing) handler gets the very same messages
 * again after an exponential, capped backoff: nothing is skipped, nothing later overtakes them.
 *
 * Acknowledged means durable (CONTRACT.md §3): nothing in memory survives a crash, so `publish` resolves only
 * once every group of the topic has committed the published messages, i.e. once the aggregator has stored
 * them (like Vector's end-to-end acknowledgements). A topic nobody subscribed to yet has nobody to wait for:
 * its publish resolves at once and the messages wait for the first group (Kafka's `fromBeginning`). When the
 * bus closes, the publishes still waiting reject with a retriable `BUS_UNAVAILABLE`: their senders retry.
 *
 * Offsets are decimal strings that never repeat across processes: a random 12-digit epoch drawn per bus,
 * then a 15-digit sequence. Consumers derive ClickHouse insert-dedup tokens from them, and a restarted
 * process must not reuse a token the previous one stored under (its rows would be dropped as repeats).
 *
 * Retention: a message is dropped from memory once every group that ever subscribed to the topic has
 * committed past it. A group whose subscribers all stopped keeps its offset and keeps holding messages, so a
 * re-subscribe continues where it left off.
 *
 * Bound: a topic holds at most `capacity` records (a message weighs its array length, 1 for other values)
 * that some group has not committed, or, with no group yet, at most `capacity` records. A publish that does
 * not fit as a whole rejects with `BusError('BUS_FULL', retriable=true)` and lands nothing; the receivers
 * answer 429 + Retry-After. Counting records rather than messages bounds memory whatever the request sizes.
 *
 * Batches: a group gets everything waiting, up to `maxBatchSize` messages and its policy's `maxSize` weight,
 * as soon as its previous batch committed (group commit: one insert in flight, the next one takes what
 * arrived meanwhile). A policy's `minSize`/`maxWaitMs` can make it wait for more, as Kafka's fetch.min.bytes.
 *
 * Several subscribers of one group on one topic share it: batches are dealt to them round-robin, still one
 * batch in flight per group. Delivery is driven by one `setImmediate` per event-loop turn for all topics with
 * news (never inside `publish`) plus the handler promises' continuations; the only timers are the per-group
 * retry backoffs and batch waits, cleared on `close()` and when a group loses its last subscriber.
 */
import { randomInt } from 'node:crypto';
import { BusError } from './types';
import type { BatchHandler, BatchPolicy, Bus, BusLogger, BusMessage, DeliveredMessage, PendingStats, SubscribeOptions, Subscription, Topic } from './types';

export interface MemoryBusOptions {
  /** Most un-committed records a topic holds; a publish that would exceed it rejects with BUS_FULL. Default 100,000. */
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
  capacity: 100_000,
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
  /** Sequence number of the next message to deliver; everything before it is committed. */
  committed: number;
  subscribers: Subscriber[];
  /** Round-robin cursor over `subscribers`. */
  turn: number;
  /** The in-flight handler call, already chained to its commit/backoff; never rejects. */
  inFlight: Promise<void> | null;
  inFlightBy: Subscriber | null;
  /** End sequence (exclusive) of the batch in flight. */
  inFlightEnd: number;
  failures: number;
  retryTimer: NodeJS.Timeout | null;
  /** From the group's first subscribe; the group waits for this much before a delivery. */
  batch: BatchPolicy<unknown> | undefined;
  /** Running while a delivery waits for `batch.minSize`; fires at `batch.maxWaitMs` at the latest. */
  waitTimer: NodeJS.Timeout | null;
  waitingSince: number;
  /** After a failure: the end sequence of the failed batch, so the redelivery is exactly that batch. */
  retryEnd: number;
}

/** A publish waiting for every group to commit through `end` (exclusive). */
interface Waiter {
  end: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface TopicLog {
  name: string;
  /** `entries[i]` has sequence `base + i`; slots before `head` are released (undefined) and await compaction. */
  entries: (AnyMessage | undefined)[];
  /** Weight (records) and publish time of each entry, aligned with `entries`. */
  weights: number[];
  publishedAt: number[];
  base: number;
  head: number;
  /** Total weight of the entries not yet released. */
  held: number;
  groups: Map<string, Group>;
  /** In sequence order; `waiters[waitHead..]` are still waiting. */
  waiters: Waiter[];
  waitHead: number;
}

/** Compact the released prefix once it is this long and at least half of the array. */
const COMPACT_MIN = 1024;

/** Offsets: `<12-digit epoch><15-digit sequence>`, a decimal number unique across processes (see the header). */
const SEQUENCE_DIGITS = 15;

/** A record batch weighs its length; any other value weighs 1. */
function weigh(value: unknown): number {
  return Array.isArray(value) ? Math.max(1, value.length) : 1;
}

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
  // 100000000000..999999999999: always 12 digits, so offsets of one bus compare as numbers and as strings.
  const epoch = String(randomInt(100_000, 1_000_000)) + String(randomInt(0, 1_000_000)).padStart(6, '0');
  const offsetOf = (seq: number): string => epoch + String(seq).padStart(SEQUENCE_DIGITS, '0');

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
      t = { name, entries: [], weights: [], publishedAt: [], base: 0, head: 0, held: 0, groups: new Map(), waiters: [], waitHead: 0 };
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

  /** End index (exclusive) of the next batch from `from`: at most maxBatchSize messages and maxSize weight, at least one. */
  function batchEnd(t: TopicLog, g: Group, from: number): number {
    const limit = Math.min(t.entries.length, from + maxBatchSize);
    const maxSize = g.batch?.maxSize;
    if (maxSize === undefined) return limit;
    let size = 0;
    let to = from;
    while (to < limit) {
      size += t.weights[to] as number;
      if (size > maxSize && to > from) break;
      to++;
    }
    return to;
  }

  function deliver(t: TopicLog, g: Group, waited = false): void {
    if (closed || g.inFlight !== null || g.retryTimer !== null || g.subscribers.length === 0) return;
    const from = g.committed - t.base;
    if (from >= t.entries.length) return;
    // A redelivery (failures > 0) is exactly the failed batch, never more: consumers derive idempotency
    // tokens from the batch's first and last offset. It never waits either.
    const to = g.failures > 0 ? g.retryEnd - t.base : batchEnd(t, g, from);
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
    g.inFlightEnd = end;
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

  /** Answers the publishes every group has committed, and drops the messages from memory. */
  function release(t: TopicLog): void {
    let low = Infinity;
    for (const g of t.groups.values()) if (g.committed < low) low = g.committed;
    while (t.waitHead < t.waiters.length && (t.waiters[t.waitHead] as Waiter).end <= low) {
      (t.waiters[t.waitHead] as Waiter).resolve();
      t.waiters[t.waitHead++] = undefined as unknown as Waiter;
    }
    if (t.waitHead >= COMPACT_MIN && t.waitHead * 2 >= t.waiters.length) {
      t.waiters = t.waiters.slice(t.waitHead);
      t.waitHead = 0;
    }
    const upTo = low - t.base;
    if (upTo <= t.head) return;
    for (let i = t.head; i < upTo; i++) {
      t.entries[i] = undefined;
      t.held -= t.weights[i] as number;
    }
    t.head = upTo;
    if (t.head >= COMPACT_MIN && t.head * 2 >= t.entries.length) {
      t.entries = t.entries.slice(t.head);
      t.weights = t.weights.slice(t.head);
      t.publishedAt = t.publishedAt.slice(t.head);
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

  function publish<T>(topic: Topic<T>, messages: BusMessage<T>[]): Promise<void> {
    if (closed) return Promise.reject(new BusError('BUS_CLOSED', `bus is closed; cannot publish to ${topic.name}`, false));
    const n = messages.length;
    if (n === 0) return Promise.resolve();
    const weights: number[] = new Array(n);
    let weight = 0;
    for (let i = 0; i < n; i++) weight += weights[i] = weigh((messages[i] as BusMessage<T>).value);
    if (weight > capacity) {
      // Would never fit: retrying cannot help, so this is not retriable.
      return Promise.reject(
        new BusError('BUS_TOO_LARGE', `publish of ${weight} records to ${topic.name} exceeds the bus capacity of ${capacity}`, false),
      );
    }
    const t = topicLog(topic.name);
    if (t.held + weight > capacity) {
      return Promise.reject(
        new BusError('BUS_FULL', `topic ${topic.name} holds ${t.held} records not yet stored (capacity ${capacity}); cannot take ${weight} more`, true),
      );
    }
    const now = Date.now();
    let seq = t.base + t.entries.length;
    for (let i = 0; i < n; i++) {
      const m = messages[i] as BusMessage<T>;
      t.entries.push({ key: m.key, value: m.value, partition: 0, offset: offsetOf(seq++) });
      t.weights.push(weights[i] as number);
      t.publishedAt.push(now);
    }
    t.held += weight;
    schedule(t);
    if (t.groups.size === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      t.waiters.push({ end: seq, resolve, reject });
    });
  }

  return {
    publish,

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
          inFlightEnd: 0,
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

    pending(): PendingStats[] {
      const out: PendingStats[] = [];
      for (const t of topics.values()) {
        out.push({ topic: t.name, records: t.held, oldestMs: t.head < t.entries.length ? (t.publishedAt[t.head] as number) : undefined });
      }
      return out;
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
      const unstored = (t: TopicLog): BusError =>
        new BusError('BUS_UNAVAILABLE', `the bus closed before these records were stored in ${t.name}; retry`, true);
      const inFlight: Promise<void>[] = [];
      for (const t of topics.values()) {
        // Nothing is delivered any more: a publish beyond what some group has committed or has in flight can
        // never be answered, so its sender is told to retry now rather than after the in-flight inserts.
        let reachable = Infinity;
        for (const g of t.groups.values()) {
          if (g.retryTimer !== null) clearTimeout(g.retryTimer);
          g.retryTimer = null;
          if (g.waitTimer !== null) clearTimeout(g.waitTimer);
          g.waitTimer = null;
          if (g.inFlight) inFlight.push(g.inFlight);
          reachable = Math.min(reachable, g.inFlight ? g.inFlightEnd : g.committed);
        }
        let keep = t.waiters.length;
        while (keep > t.waitHead && (t.waiters[keep - 1] as Waiter).end > reachable) keep--;
        for (let i = keep; i < t.waiters.length; i++) (t.waiters[i] as Waiter).reject(unstored(t));
        t.waiters.length = keep;
      }
      closing = Promise.all(inFlight).then(() => {
        // What an in-flight batch finished has been answered by its commit; the rest was not stored.
        for (const t of topics.values()) {
          for (let i = t.waitHead; i < t.waiters.length; i++) (t.waiters[i] as Waiter).reject(unstored(t));
          t.waiters = [];
          t.waitHead = 0;
        }
      });
      return closing;
    },
  };
}
